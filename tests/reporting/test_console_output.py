"""The console reporter's own rules: progress that never goes back, variant names, clipping."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli, run_testfleet
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from testfleet.model import Outcome, Result
from testfleet.reporting.console import ConsoleReporter, clip
from testfleet.reporting.variant_names import abbreviate, params_label, variant_name


def result(nodeid: str = "t.py::test_a", outcome: str = "passed") -> Result:
    return Result(run_id="r", variant_id="v", case_id="c", nodeid=nodeid, outcome=Outcome(outcome),
                  categories=[outcome])


def test_progress_percentage_never_goes_back_while_exploration_grows_the_total(capsys) -> None:
    reporter = ConsoleReporter(console=Console(file=io.StringIO()), live=False)
    reporter.on_collected(70, 0, 2)
    reporter.on_exploring("40 executions")
    # 69 of 70 done, then proposals raise the total faster than results come in
    done, total = 0, 70
    for step in range(300):
        done += 1
        if step >= 60:
            total += 2 if step % 3 else 0
        reporter.on_result(result(), done, max(total, done))
    reporter.stop()
    percents = [int(p) for p in re.findall(r"\[\s*(\d+)%\]", capsys.readouterr().out)]
    assert len(percents) >= 4
    assert percents == sorted(percents), percents
    assert all(p < 100 for p in percents[:-1])


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=3000), st.lists(st.integers(), max_size=50)),
    max_size=30))
def test_a_variant_label_stays_short_whatever_the_values(params: dict) -> None:
    label = params_label(params)
    assert len(label) <= 8 * (32 + 1 + 32 + 2) + len(", +22 more")
    assert "\n" not in label  # one line, whatever the names and values hold
    if len(params) > 8:
        assert label.endswith(f"+{len(params) - 8} more")


def test_an_explored_variant_is_named_by_origin_and_values_not_baseline() -> None:
    name = variant_name("tests/t.py::test_create[baseline]",
                        {"amount": 33.448240737149305, "currency": "EUR", "note": "x" * 2000}, "rule:Bigger")
    assert name == ("tests/t.py::test_create[rule:Bigger: amount=33.4482, currency='EUR', "
                    f"note='{'x' * 30}…]")
    assert variant_name("t.py::test_p[1-2]", {"a": 1}, "edge") == "t.py::test_p[1-2] [edge: a=1]"
    assert variant_name("t.py::test_x[baseline]", {}, "baseline") == "t.py::test_x[baseline]"
    assert abbreviate("y" * 10, width=5) == "'yyy…"


def test_clip_keeps_head_and_tail_and_says_how_much_is_left_out() -> None:
    text = "\n".join(f"line {i}" for i in range(10_000))
    clipped = clip(text)
    lines = clipped.splitlines()
    assert lines[0] == "line 0" and lines[-1] == "line 9999" and len(lines) <= 201
    assert re.search(r"\.\.\. [\d,]+ characters \(9,800 lines\) not shown", clipped)
    assert clip("short\ntext") == "short\ntext"


@pytest.mark.slow
def test_show_names_each_explored_failure_by_its_values(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", {"tests/test_e.py": """
        import testfleet
        from testfleet import Int

        @testfleet.explore(size=Int(0, 100_000))
        def test_size(size):
            assert size < 50_000, "too big"
    """})
    ran = run_testfleet(root, "--explore", "12", "--seed", "3", "--junitxml", tmp_path / "j.xml")
    assert ran.returncode == 1, ran.log
    import xml.etree.ElementTree as ET

    names = [case.get("name") for case in ET.parse(tmp_path / "j.xml").iter("testcase")]
    assert names.count("test_size[baseline]") == 1, names  # the baseline alone keeps that name
    explored = [n for n in names if n != "test_size[baseline]"]
    assert len(explored) == len(set(explored)) >= 10, names  # each variant its own name
    assert all(re.fullmatch(r"test_size\[[a-z:]+: size=-?\d+\]", n) for n in explored), names
    shown = run_cli(root, "show", "last", "--store", ran.store)
    failures = [line for line in shown.stdout.splitlines() if line.strip().startswith("FAILED")]
    assert failures, shown.log
    for line in failures:
        assert "[baseline]" not in line, shown.log
        size = int(re.search(r"test_size\[[^\]]*size=(\d+)", line).group(1))
        assert size >= 50_000, line
    assert "[baseline]" not in ran.stdout.split("EXPLORED FAILURES")[-1].split("exploration")[0], ran.log


def test_piped_command_output_is_not_cut_at_80_columns(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from testfleet.model import Run
    from testfleet.store.db import Store

    store = tmp_path / "s.duckdb"
    counts = {"failed": 12, "passed": 3456, "skipped": 78, "xfailed": 9, "xpassed": 10, "error": 11,
              "subtests passed": 21039, "timeout": 2, "crashed": 1}
    with Store.open(store) as db:
        run = Run(run_id="20240101-000000-abcd", started_at=datetime.now(UTC), counts=counts, duration=1.0)
        db.begin_run(run)
        db.finish_run(run)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run([sys.executable, "-m", "testfleet", "runs", "--store", str(store)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "21039 subtests passed, 1 crashed, 2 timeout in 1.00s" in proc.stdout, proc.stdout
    assert "…" not in proc.stdout


def test_a_set_columns_still_wins_for_piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from testfleet.reporting.consoles import make_console

    monkeypatch.setenv("COLUMNS", "100")
    assert make_console(file=io.StringIO()).width == 100
    monkeypatch.delenv("COLUMNS")
    assert make_console(file=io.StringIO()).width > 1000  # pytest's own stdout is no terminal
