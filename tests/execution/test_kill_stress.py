"""Under stress, a run's outcome is the quiet run's: worker kills lose and duplicate nothing.

A real ``testfleet run`` with 2 workers on 150 quick tests (known outcomes: 143 pass, 4 fail, 3
skip) while the test SIGKILLs the worker that is running a test, once every 25 finished tests
(counted, not timed). Each killed test is reported crashed and retried once on another worker,
so the store must hold exactly one final result per test with the quiet run's counts, and one
non-final ``crashed`` attempt per kill that hit a test. ``bench/resume_trials.py`` runs the full
version (1,000 tests, a kill every 5 s) and compares with an actual quiet run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from execution.conftest import TIMEOUT, clean_env, make_suite

from testfleet.model import RunStatus
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

FILES, PER_FILE = 5, 30
KILL_EVERY = 25  # finished tests between two kills

TESTS = '''
import os
import time

import pytest

LOG = os.environ["STRESS_LOG"]


def note(word, request):
    with open(LOG, "a") as log:  # one short O_APPEND write: lines never interleave
        log.write(f"{{word}} {{request.node.nodeid}} {{os.getpid()}}\\n")


@pytest.mark.parametrize("n", range({per_file}))
def test_work(n, request):
    note("start", request)
    time.sleep(0.015)
    note("end", request)
    if ({file} * {per_file} + n) % 37 == 3:
        assert False, "fails on purpose"
    if ({file} * {per_file} + n) % 50 == 7:
        pytest.skip("skips on purpose")
'''


def expected_counts() -> Counter[str]:
    counts: Counter[str] = Counter()
    for k in range(FILES * PER_FILE):
        counts["failed" if k % 37 == 3 else "skipped" if k % 50 == 7 else "passed"] += 1
    return counts


def _lines(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    text = log.read_text()
    return [line.split() for line in text[:text.rfind("\n") + 1].splitlines()]


def _running_first_time(lines: list[list[str]]) -> int | None:
    """The pid of a worker now running a test that has not run before (killing it mid-test makes
    exactly that test crash; a retried test is never hit twice, which would make it crash for good)."""
    starts = Counter(nodeid for word, nodeid, _ in lines if word == "start")
    running: dict[int, str] = {}
    for word, nodeid, pid in lines:
        if word == "start":
            running[int(pid)] = nodeid
        else:
            running.pop(int(pid), None)
    for pid, nodeid in running.items():
        if starts[nodeid] == 1 and psutil.pid_exists(pid):
            return pid
    return None


def test_killing_a_worker_every_25_tests_changes_no_outcome_and_loses_nothing(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {f"tests/test_s{f}.py": TESTS.format(file=f, per_file=PER_FILE)
                                           for f in range(FILES)})
    log, store_path = root / "executions.log", root / "s.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "testfleet", "run", "--store", str(store_path), "-n", "2", "-q",
         "--max-worker-restarts", "100"],
        cwd=root, env=clean_env({"STRESS_LOG": str(log)}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    kills, next_kill = 0, KILL_EVERY
    deadline = time.monotonic() + TIMEOUT
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            lines = _lines(log)
            if sum(1 for word, _, _ in lines if word == "end") >= next_kill:
                pid = _running_first_time(lines)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                    next_kill += KILL_EVERY
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert kills >= 4, f"only {kills} kills happened: the run was too quick to stress\n{out}"
    assert proc.returncode == 1, out  # the failures on purpose, nothing else

    with Store.open(store_path, read_only=True) as store:
        run = store.get_run("last")
        results = store.results(run.run_id)
    final = [r for r in results if r.final]
    per_test = Counter(r.nodeid for r in final)
    assert len(per_test) == FILES * PER_FILE and set(per_test.values()) == {1}  # none lost, none twice
    assert Counter(r.outcome.value for r in final) == expected_counts()
    assert run.status == RunStatus.finished and run.counts == dict(expected_counts())
    crashed = [r for r in results if not r.final]
    assert {r.outcome.value for r in crashed} <= {"crashed"}, crashed
    assert 1 <= len(crashed) <= kills  # a kill between two tests crashes none
    retried = {r.nodeid: r for r in final if r.nodeid in {c.nodeid for c in crashed}}
    assert all(r.attempt == 2 for r in retried.values()), retried
