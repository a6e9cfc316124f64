"""Helpers on anomaly, piece by piece: [tool.testfleet.helpers], the limits and the overhead
budget, the memory report of testfleet's sitecustomize, perf's folded stacks, smaps, and the
watch that stops a helper over its CPU share."""

from __future__ import annotations

import subprocess
import sys
import threading
import tracemalloc
from collections import Counter
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.execution.probes import sut_sitecustomize
from testfleet.execution.probes.flame import fold_perf_script, render_svg
from testfleet.execution.probes.memory import Allocation, parse_tracemalloc, summarise_smaps
from testfleet.execution.probes.outcome import supervise
from testfleet.execution.probes.settings import (
    HELPERS,
    MAX_RATE,
    MIN_RATE,
    SAMPLE_CPU_SECONDS,
    HelperSettings,
    Limits,
    helper_plan,
    sampling_rate,
)
from testfleet.settings import load_settings

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = st.sampled_from(["planted_hot_checksum", "main", "serve_forever", "do_GET", "_run", "a<b>&c"])


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _load(folder: Path, table: dict[str, object]) -> HelperSettings:
    lines = "".join(f"{key} = {_toml(value)}\n" for key, value in table.items())
    (folder / "testfleet.toml").write_text(f"[helpers]\n{lines}")
    return load_settings([], {}, cwd=folder)[0].helpers


GOOD = st.fixed_dictionaries({}, optional={
    "enabled": st.lists(st.sampled_from(HELPERS), unique=True),
    "duration": st.floats(0.1, 600, allow_nan=False),
    "max_overhead": st.floats(0.001, 1.0, allow_nan=False),
    "max_count": st.integers(0, 50),
    "rate": st.integers(1, 1000),
    "metrics": st.lists(st.sampled_from(["sut.", "prom.", "duration", "sut.cpu"]), max_size=3),
    "top": st.integers(1, 1000),
})


@FEW
@given(GOOD)
def test_a_valid_helpers_table_is_read_as_written(tmp_path: Path, table: dict[str, object]) -> None:
    read = _load(tmp_path, table)
    for key, value in table.items():
        assert getattr(read, key) == value


BAD = st.sampled_from([
    ("enabled", ["profile", "gdb"], "helpers.enabled"),
    ("enabled", ["threads", "threads"], "twice"),
    ("duration", 0, "helpers.duration"),
    ("duration", -3.5, "helpers.duration"),
    ("max_overhead", 1.5, "helpers.max_overhead"),
    ("max_overhead", 0, "helpers.max_overhead"),
    ("max_count", -1, "helpers.max_count"),
    ("rate", 0, "helpers.rate"),
    ("rate", "fast", "helpers.rate"),
    ("top", 0, "helpers.top"),
    ("attach_gdb", True, "helpers.attach_gdb"),
])


@FEW
@given(BAD, GOOD)
def test_a_bad_helpers_value_names_the_key(tmp_path: Path, bad: tuple[str, object, str], rest: dict) -> None:
    key, value, named = bad
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")) as caught:
        _load(tmp_path, {**rest, key: value})
    assert str(tmp_path / "testfleet.toml") in str(caught.value)


def test_helpers_are_off_without_a_sut_or_a_count_and_keep_their_order() -> None:
    chosen = HelperSettings(enabled=["threads", "memory", "profile"])
    assert chosen.helpers(has_sut=True) == ("profile", "memory", "threads")
    assert chosen.helpers(has_sut=False) == ()
    assert HelperSettings(enabled=["profile"], max_count=0).helpers(has_sut=True) == ()
    assert helper_plan(chosen, False, "/x/s.duckdb", "r1") is None
    plan = helper_plan(chosen, True, "/x/s.duckdb", "r1")
    assert plan is not None and plan.folder == Path("/x/artefacts/r1")


@FEW
@given(st.floats(0.001, 1.0), st.integers(1, 3))
def test_the_sampling_rate_stays_inside_the_overhead_budget(max_overhead: float, attached: int) -> None:
    rate = sampling_rate(HelperSettings(max_overhead=max_overhead), attached)
    assert MIN_RATE <= rate <= MAX_RATE
    assert rate == MIN_RATE or rate * SAMPLE_CPU_SECONDS <= max_overhead / attached + 1e-12
    assert sampling_rate(HelperSettings(max_overhead=max_overhead, rate=7), attached) == 7


def test_limits_allow_one_attachment_per_process_and_max_count_in_all() -> None:
    limits = Limits(2)
    assert limits.refusal(10) is None
    limits.take(10)
    assert "already attached" in str(limits.refusal(10))
    assert limits.refusal(11) is None
    limits.take(11)
    limits.release(10)
    assert "max_count" in str(limits.refusal(10))


def planted_allocation() -> list[bytes]:
    return [bytes(1000) for _ in range(2000)]


def test_the_sitecustomize_report_names_the_allocation_site_and_its_growth(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        sut_sitecustomize.write_snapshot(str(tmp_path), 50)
        kept = planted_allocation()
        path = sut_sitecustomize.write_snapshot(str(tmp_path), 50)
    finally:
        tracemalloc.stop()
    allocations = parse_tracemalloc(Path(path).read_text())
    line = planted_allocation.__code__.co_firstlineno + 1
    where = f"{__file__}:{line}"
    top = [a for a in allocations if a.kind == "top" and a.where == where]
    grown = [a for a in allocations if a.kind == "growth" and a.where == where]
    assert top and top[0].size >= 2000 * 1000 and len(kept) == 2000
    assert grown and grown[0].count >= 2000


WHERE = st.builds("{}:{}".format, st.text("abz/._<> -", min_size=1, max_size=20), st.integers(0, 99999))
ALLOCATIONS = st.lists(st.builds(Allocation, st.sampled_from(["top", "growth"]), st.integers(0, 2**40),
                                 st.integers(0, 10**6), WHERE))


@FEW
@given(ALLOCATIONS, st.lists(st.sampled_from(["# header", "", "top\tx\t1\ta:1", "noise", "growth\t1\t2"])))
def test_parsing_the_report_keeps_its_rows_and_skips_anything_else(rows: list[Allocation], noise: list[str]) -> None:
    text = []
    for i, allocation in enumerate(rows):
        text.append(noise[i % len(noise)] if noise else "")
        text.append(f"{allocation.kind}\t{allocation.size}\t{allocation.count}\t{allocation.where}")
    assert parse_tracemalloc("\n".join(text + noise)) == rows


STACKS = st.lists(st.tuples(st.lists(NAMES, min_size=1, max_size=5), st.integers(1, 4)), min_size=1, max_size=6)


@FEW
@given(STACKS)
def test_perf_samples_fold_into_their_stacks(stacks: list[tuple[list[str], int]]) -> None:
    text = []
    expected: Counter[tuple[str, ...]] = Counter()
    for frames, count in stacks:
        for _ in range(count):
            text.append("app 123 4242.000001:   10101010 cpu-clock:pppH: ")
            text += [f"\t    7f00{i:04x} {name}+0x1{i} (/usr/lib/app)" for i, name in enumerate(reversed(frames))]
            text.append("")
        expected[("app", *frames)] += count
    folded = fold_perf_script("\n".join(text))
    assert folded == expected
    svg = render_svg(folded, "perf: pid 123")
    assert svg.startswith("<svg")
    assert all(f"<title>{escape(name)} (" in svg for frames, _ in stacks for name in frames)


def test_smaps_is_summed_by_mapping() -> None:
    text = ("55d0-55e0 r-xp 00000000 08:01 42   /usr/bin/sut\nRss:                 120 kB\n"
            "7f00-7f10 rw-p 00000000 00:00 0 \nRss:                 900 kB\n"
            "7f10-7f20 rw-p 00000000 00:00 0   [heap]\nRss:                 300 kB\n"
            "7f20-7f30 r--p 00000000 08:01 42   /usr/bin/sut\nRss:                  30 kB\n")
    assert summarise_smaps(text) == [("[anon]", 900), ("[heap]", 300), ("/usr/bin/sut", 150)]


def test_a_helper_over_its_cpu_share_is_stopped() -> None:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    watch = supervise(hog, duration=30.0, share=0.05, stop=threading.Event())
    assert hog.returncode is not None
    assert "over its 5.0% share" in watch.note and watch.cpu_s > 0.05 * watch.attached_s


def test_a_helper_is_stopped_when_the_run_ends() -> None:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = threading.Event()
    ended.set()
    watch = supervise(idle, duration=30.0, share=0.5, stop=ended)
    assert idle.returncode is not None and "the run ended" in watch.note
