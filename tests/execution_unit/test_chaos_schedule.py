"""Chaos schedules (YAML) and profiles: what a valid file injects and when, one message naming
the file and key for an invalid one, and the same profile schedule for the same seed."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.execution.chaos import plan_chaos
from testfleet.execution.chaos.profiles import PROFILES, profile_schedule
from testfleet.execution.chaos.schedule import FAULTS, LASTING, NEEDS_SUT, PARAMS, load_schedule, parse_schedule

GOOD = """
faults:
  - every: 4
    count: 2
    fault: latency
    target: gw0
    duration: 3
    params: {ms: 200, jitter_ms: 50}
  - at: 5
    fault: kill_worker
  - at: 1
    fault: fill_memory
    target: any
    duration: 2
    params: {mib: 64}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chaos.yaml"
    path.write_text(text)
    return path


def test_a_schedule_expands_into_injections_in_time_order(tmp_path: Path) -> None:
    schedule = load_schedule(_write(tmp_path, GOOD))
    got = [(i.at, i.fault, i.target, i.duration, i.params) for i in schedule.upcoming()]
    assert got == [(1, "fill_memory", "any", 2, {"mib": 64}),
                   (4, "latency", "gw0", 3, {"ms": 200, "jitter_ms": 50}),
                   (5, "kill_worker", "any", 0, {}),
                   (8, "latency", "gw0", 3, {"ms": 200, "jitter_ms": 50})]


@pytest.mark.parametrize(("text", "place", "words"), [
    ("faults:\n  - fault: kill_worker\n", "faults[0]", "exactly one of 'at'"),
    ("faults:\n  - {at: 1, after_tests: 3, fault: kill_worker}\n", "faults[0]", "exactly one of 'at'"),
    ("faults:\n  - {after_tests: 3, count: 2, fault: kill_worker}\n", "faults[0]", "go with 'every'"),
    ("faults:\n  - {after_tests: -1, fault: kill_worker}\n", "faults[0].after_tests", "0"),
    ("- at: 1\n  fault: kill_wroker\n", "[0].fault", "kill_worker"),
    ("faults:\n  - at: 1\n    fault: latency\n", "faults[0]", "duration"),
    ("faults:\n  - at: 1\n    fault: latency\n    duration: 2\n    params: {seconds: 3}\n",
     "faults[0]", "no parameter 'seconds'"),
    ("faults:\n  - at: 1\n    fault: kill_sut\n  - at: -2\n    fault: kill_sut\n", "faults[1].at", "0"),
    ("faults:\n  - at: 1\n    fault: http_error\n    duration: 1\n    params: {share: 2}\n",
     "faults[0]", "within 0..1"),
    ("faults: []\n", "faults", "at least one fault"),
    ("fautls:\n  - at: 1\n", "fautls", "unknown key"),
    ("faults:\n  - [1, 2]\n", "faults[0]", "a mapping"),
    ("faults: [\n", "line", "not valid YAML"),
])
def test_an_invalid_schedule_names_the_file_and_key(tmp_path: Path, text: str, place: str, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_schedule(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and f"[{place}" in message and words in message, message


def test_an_unknown_profile_or_missing_file_says_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="mild, moderate, severe or a YAML schedule"):
        plan_chaos("extreme", 1, has_sut=True, cwd=tmp_path)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_profile_draws_the_same_schedule_from_the_same_seed(name: str) -> None:
    def first(seed: int, has_sut: bool = True) -> list[tuple[float, str, float]]:
        stream = profile_schedule(name, seed, has_sut=has_sut).upcoming()
        return [(i.at, i.fault, i.duration) for i in itertools.islice(stream, 30)]

    assert first(11) == first(11)
    assert first(11) != first(12)
    times = [at for at, _, _ in first(11)]
    assert times == sorted(times) and times[0] >= PROFILES[name].first_after
    assert not {fault for _, fault, _ in first(11, has_sut=False)} & NEEDS_SUT


# -- property tests of the parser ------------------------------------------------------------
@st.composite
def fault_entries(draw: st.DrawFn) -> dict:
    fault = draw(st.sampled_from(FAULTS))
    entry: dict = {"fault": fault, "target": draw(st.sampled_from(["any", "gw0", "gw12"]))}
    when = draw(st.sampled_from(["at", "every", "after_tests"]))
    if when == "at":
        entry["at"] = draw(st.floats(0, 1000, allow_nan=False))
    elif when == "after_tests":
        entry["after_tests"] = draw(st.integers(0, 10_000))
    else:
        entry["every"] = draw(st.floats(0.01, 100, allow_nan=False))
        if draw(st.booleans()):
            entry["count"] = draw(st.integers(1, 5))
    if fault in LASTING:
        entry["duration"] = draw(st.floats(0.01, 60, allow_nan=False))
    entry["params"] = {name: draw(st.floats(low, high, allow_nan=False))
                       for name, (low, high) in PARAMS.get(fault, {}).items() if draw(st.booleans())}
    return entry


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fault_entries(), min_size=1, max_size=5), st.booleans())
def test_every_valid_schedule_round_trips_through_yaml(entries: list[dict], wrapped: bool) -> None:
    text = yaml.safe_dump({"faults": entries} if wrapped else entries)
    schedule = parse_schedule(yaml.safe_load(text), "chaos.yaml")
    assert [s.fault for s in schedule.specs] == [e["fault"] for e in entries]
    injections = list(itertools.islice(schedule.upcoming(), 50))
    assert [i.at for i in injections] == sorted(i.at for i in injections)
    assert all(i.after_tests is None for i in injections)
    keyed = schedule.progress()
    assert [(i.after_tests, i.entry) for i in keyed] == sorted(
        (e["after_tests"], n) for n, e in enumerate(entries) if "after_tests" in e)
    assert all((i.fault, i.target, i.params) == (entries[i.entry]["fault"], entries[i.entry]["target"],
                                                 entries[i.entry]["params"]) for i in keyed)
    for injection in injections:
        entry = entries[injection.entry]
        assert (injection.fault, injection.target) == (entry["fault"], entry["target"])
        assert injection.duration == entry.get("duration", 0) and injection.params == entry["params"]
        expected = [entry["at"]] if "at" in entry else [entry["every"] * (k + 1) for k in range(entry.get("count", 50))]
        assert any(injection.at == pytest.approx(t) for t in expected)


_junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(["faults", "fault", "at", "every", "target",
                                                        "duration", "params", "count", "x"]) | st.text(max_size=5),
                                       inner, max_size=5), max_leaves=12)


@settings(max_examples=50, deadline=None)
@given(_junk)
def test_any_document_is_a_schedule_or_one_settings_error(data: object) -> None:
    try:
        schedule = parse_schedule(data, "chaos.yaml")
    except SettingsError as exc:
        assert str(exc).startswith("chaos.yaml [")
    else:
        assert schedule.specs
