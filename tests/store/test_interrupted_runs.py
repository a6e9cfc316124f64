"""A run whose coordinator died (kill -9, SIGTERM, a full disk) is closed as interrupted, with its
counts from the results it stored, instead of reading "running" and "no tests ran" forever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil
import pytest
from execution.conftest import TIMEOUT, clean_env, make_suite, run_cli

from testfleet.model import Run, RunStatus
from testfleet.store.db import Store
from testfleet.store.liveness import is_gone, this_coordinator

# A coordinator stand-in: begins a run, stores three final results (2 passed, 1 failed) and one
# non-final attempt, then dies by SIGKILL without closing the run.
_DIES_MID_RUN = textwrap.dedent("""
    import os, signal, sys
    from datetime import UTC, datetime
    from testfleet.model import Outcome, Result, Run
    from testfleet.store.db import Store

    store = Store.open(sys.argv[1])
    now = datetime.now(UTC)
    store.begin_run(Run(run_id="killed", started_at=now, workers=2))
    def result(nodeid, outcome, final=True, attempt=1):
        return Result(run_id="killed", variant_id=nodeid, case_id=nodeid, nodeid=nodeid,
                      attempt=attempt, worker="gw0", outcome=outcome, duration=0.5,
                      started_at=now, finished_at=now, final=final)
    store.append_results([result("t::a", Outcome.passed), result("t::b", Outcome.passed),
                          result("t::c", Outcome.failed, final=False),
                          result("t::c", Outcome.failed, attempt=2)])
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _killed_store(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    proc = subprocess.run([sys.executable, "-c", _DIES_MID_RUN, str(path)], env=clean_env(),
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == -signal.SIGKILL
    return path


def test_a_run_whose_coordinator_was_killed_reads_as_interrupted_with_its_stored_counts(
        tmp_path: Path) -> None:
    path = _killed_store(tmp_path)
    with Store.open(path, read_only=True) as store:
        run = store.get_run("last")
        listed = store.list_runs()
    assert run.status == RunStatus.interrupted and run.exit_code == 2
    assert run.counts == {"passed": 2, "failed": 1}
    assert listed[0].counts == run.counts and listed[0].status == RunStatus.interrupted
    # read-only: nothing was written, the row still says running
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)


def test_opening_the_store_for_writing_closes_a_dead_coordinators_run_for_good(
        tmp_path: Path) -> None:
    path = _killed_store(tmp_path)
    Store.open(path).close()
    with duckdb.connect(str(path), read_only=True) as conn:
        status, code, counts, ended = conn.execute(
            "SELECT status, exit_code, counts::VARCHAR, finished_at IS NOT NULL FROM runs").fetchone()
    assert (status, code, json.loads(counts), ended) == ("interrupted", 2, {"passed": 2, "failed": 1},
                                                         True)


def test_runs_and_show_print_an_interrupted_run_with_its_counts(tmp_path: Path) -> None:
    path = _killed_store(tmp_path)
    runs = run_cli(tmp_path, "runs", "--store", path)
    show = run_cli(tmp_path, "show", "last", "--store", path)
    assert runs.returncode == 0 and "1 failed, 2 passed" in runs.stdout, runs.log
    assert "no tests ran" not in runs.stdout
    assert "interrupted  exit 2" in show.stdout and "running" not in show.stdout, show.log


def test_a_live_coordinators_run_stays_running(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.begin_run(Run(run_id="live", started_at=datetime.now(UTC)))
    with Store.open(tmp_path / "s.duckdb") as store:  # this process began it and still runs
        assert store.get_run("live").status == RunStatus.running


def test_a_coordinator_is_gone_when_its_pid_is_free_or_reused_and_undecided_elsewhere() -> None:
    pid, host, started = this_coordinator()
    assert not is_gone(pid, host, started)
    assert is_gone(pid, host, started - 3600)  # same pid, another process (a reused pid)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child_started = psutil.Process(child.pid).create_time()
    assert not is_gone(child.pid, host, child_started)
    child.kill()
    child.wait()
    assert is_gone(child.pid, host, child_started)
    assert not is_gone(pid, host + "-elsewhere", started - 3600)  # another host: not decidable


_BLOCKING_SUITE = {
    "tests/test_a.py": """
        import os, time
        from pathlib import Path

        def test_one():
            pass

        def test_two():
            pass

        def test_three():
            assert False, "broken"

        def test_z_blocks():
            Path(os.environ["MARKER"]).write_text("blocking")
            time.sleep(600)
        """,
}


def _start_blocking_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    root = make_suite(tmp_path / "p", _BLOCKING_SUITE)
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-m", "testfleet", "run", "--workers", "1", "--store",
         str(root / "s.duckdb")],
        cwd=root, env=clean_env({"MARKER": str(marker)}), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never reached its blocking test:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    return proc, root / "s.duckdb"


@pytest.mark.slow
def test_sigterm_to_testfleet_run_closes_the_run_as_interrupted_with_exit_2(tmp_path: Path) -> None:
    proc, store = _start_blocking_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("testfleet run did not stop on SIGTERM")
    assert proc.returncode == 2, output
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
    assert run.status == RunStatus.interrupted and run.exit_code == 2
    assert run.counts.get("passed") == 2 and run.counts.get("failed") == 1, run.counts


@pytest.mark.slow
def test_kill_9_of_testfleet_run_leaves_a_run_the_next_reader_sees_interrupted(
        tmp_path: Path) -> None:
    proc, store = _start_blocking_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    for child in psutil.process_iter():  # the workers of this run only (they name the marker)
        try:
            if child.environ().get("MARKER") == str(tmp_path / "marker"):
                child.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + TIMEOUT
    while True:  # the orphaned workers may hold nothing; the lock goes with the coordinator
        try:
            db = Store.open(store, read_only=True)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with db:
        run = db.get_run("last")
        stored = [r for r in db.results(run.run_id) if r.final]
    assert run.status == RunStatus.interrupted and run.exit_code == 2
    # whatever reached the store before the kill is what the run counts
    expected: dict[str, int] = {}
    for r in stored:
        expected[r.outcome.value] = expected.get(r.outcome.value, 0) + 1
    assert run.counts == expected
