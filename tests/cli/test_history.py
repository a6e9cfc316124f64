"""`testfleet runs` and `testfleet show` read back what earlier runs stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli, run_testfleet

from testfleet.store.db import Store

pytestmark = pytest.mark.slow

SUITE = {
    "tests/test_app.py": """
        import os
        from pathlib import Path

        SECOND = Path(__file__).parent / "second-run"


        def test_ok():
            pass


        def test_always_broken():
            assert 1 == 2, "always broken"


        def test_broken_in_second_run():
            assert not SECOND.exists(), "broken since the second run"
        """,
}


def test_runs_lists_every_run_newest_first_and_show_prints_the_failures(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    store = tmp_path / "history.duckdb"
    first = run_testfleet(root, store=store)
    assert first.returncode == 1, first.log
    (root / "tests" / "second-run").touch()
    second = run_testfleet(root, store=store)
    assert second.returncode == 1, second.log
    with Store.open(store, read_only=True) as db:
        newest, oldest = (run.run_id for run in db.list_runs())
    assert first.run(oldest).counts == {"failed": 1, "passed": 2}
    assert second.run(newest).counts == {"failed": 2, "passed": 1}

    listed = run_cli(root, "runs", "--store", store)
    assert listed.returncode == 0, listed.log
    assert newest in listed.stdout and oldest in listed.stdout, listed.log
    assert listed.stdout.index(newest) < listed.stdout.index(oldest)
    lines = {run_id: next(line for line in listed.stdout.splitlines() if run_id in line)
             for run_id in (newest, oldest)}
    assert "2 failed, 1 passed" in lines[newest] and "1 failed, 2 passed" in lines[oldest], listed.log

    last = run_cli(root, "show", "last", "--store", store)
    assert last.returncode == 0, last.log
    assert newest in last.stdout and oldest not in last.stdout
    assert "tests/test_app.py::test_always_broken" in last.stdout
    assert "tests/test_app.py::test_broken_in_second_run" in last.stdout
    assert "always broken" in last.stdout
    assert "tests/test_app.py::test_ok" not in last.stdout

    # the shortest prefix that names only the older run
    prefix = next(oldest[:n] for n in range(1, len(oldest) + 1) if not newest.startswith(oldest[:n]))
    by_prefix = run_cli(root, "show", prefix, "--store", store)
    assert by_prefix.returncode == 0, by_prefix.log
    assert oldest in by_prefix.stdout and newest not in by_prefix.stdout
    assert "tests/test_app.py::test_always_broken" in by_prefix.stdout
    assert "test_broken_in_second_run" not in by_prefix.stdout

    common = next(oldest[:n] for n in range(len(oldest), 0, -1) if newest.startswith(oldest[:n]))
    ambiguous = run_cli(root, "show", common, "--store", store)
    assert ambiguous.returncode == 2, ambiguous.log
    assert "ambiguous" in ambiguous.stderr and newest in ambiguous.stderr and oldest in ambiguous.stderr


def test_runs_on_a_store_without_runs_says_so(tmp_path: Path) -> None:
    store = tmp_path / "empty.duckdb"
    Store.open(store).close()
    listed = run_cli(tmp_path, "runs", "--store", store)
    assert listed.returncode == 0, listed.log
    assert "no runs" in listed.stdout
    shown = run_cli(tmp_path, "show", "last", "--store", store)
    assert shown.returncode == 2, shown.log
    assert "no runs recorded yet" in shown.stderr
