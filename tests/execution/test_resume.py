"""A run killed by ``kill -9`` loses nothing: its processes go, and ``--resume`` finishes it.

One real ``testfleet run`` on a suite of 30 tests (one fails, one skips) whose gate test blocks
until the test says go, so that the run is surely mid-way when its coordinator is SIGKILLed.
Every test appends a line to ``executions.log`` each time it runs, so the test can tell which
ran twice. Then every process the coordinator had must be gone within 5 s, and
``testfleet run --resume last`` must finish the run: every test once in the store and in the
JUnit report, the counts of an uninterrupted run, nothing that had a result run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import psutil
import pytest
from execution.conftest import TIMEOUT, clean_env, make_suite, run_cli

from testfleet.model import RunStatus
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

GATE_ID = "tests/test_0gate.py::test_gate"  # collected first: it holds a worker from the start
GONE_WITHIN = 5.0  # seconds a process of the run may outlive its killed coordinator (issue 19)

TESTS = '''
import os
import time
from pathlib import Path

import pytest

ROOT = Path(os.environ["RESUME_DIR"])


@pytest.mark.parametrize("n", range({first}, {last}))
def test_quick(n, request):
    with open(ROOT / "executions.log", "a") as log:
        log.write(f"{{request.node.nodeid}} {{os.getpid()}}\\n")
    time.sleep(0.02)
    if n == 7:
        assert n == 0, "fails on purpose"
    if n == 11:
        pytest.skip("skips on purpose")
'''

GATE = '''
import os
import time
from pathlib import Path


def test_gate(request):
    root = Path(os.environ["RESUME_DIR"])
    with open(root / "executions.log", "a") as log:
        log.write(f"{request.node.nodeid} {os.getpid()}\\n")
    deadline = time.monotonic() + 60
    while not (root / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
'''


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _executions(root: Path) -> Counter[str]:
    log = root / "executions.log"
    return Counter(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else Counter()


def _wait_for(predicate, proc: subprocess.Popen[str], what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {TIMEOUT}s")
        time.sleep(0.02)


def test_a_run_killed_mid_way_leaves_no_process_and_resumes_to_every_test_once(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {
        "tests/test_a.py": TESTS.format(first=0, last=15), "tests/test_b.py": TESTS.format(first=15, last=29),
        "tests/test_0gate.py": GATE})
    env = clean_env({"RESUME_DIR": str(root)})
    store_path = root / "s.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "testfleet", "run", "--store", str(store_path), "-n", "2", "-q"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        # the gate holds one worker; the other has run a dozen tests: the run is mid-way
        _wait_for(lambda: _executions(root)[GATE_ID] == 1 and sum(_executions(root).values()) >= 13, proc,
                  "a dozen tests and the gate running")
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert len([p for p in descendants if _alive(p)]) >= 3  # the zygote and two workers at least
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        deadline = time.monotonic() + GONE_WITHIN
        alive = descendants
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _alive(p)]
            time.sleep(0.05)
        for p in alive:
            p.kill()
        assert not alive, f"still alive {GONE_WITHIN}s after the coordinator's SIGKILL: {[p.pid for p in alive]}"
    finally:
        (root / "go").write_text("")
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    with Store.open(store_path) as store:  # for writing: the journal is replayed, the run closed
        run = store.get_run("last")
        before = {r.nodeid for r in store.results(run.run_id, final_only=True)}
    assert run.status == RunStatus.interrupted
    assert before, "results that arrived before the kill are in the store"
    ran_before = _executions(root)

    resumed = run_cli(root, "run", "--resume", "last", "--store", store_path, "--junitxml", "junit.xml", env=env)
    assert resumed.returncode == 1, resumed.log  # one test fails, as in a run never interrupted
    assert f"resuming run {run.run_id}: {len(before)} tests already had a result" in resumed.output, resumed.log

    with Store.open(store_path, read_only=True) as store:
        assert [r.run_id for r in store.list_runs()] == [run.run_id]  # the same run, not a new one
        final = store.results(run.run_id, final_only=True)
        after = store.get_run(run.run_id)
    per_test = Counter(r.nodeid for r in final)
    assert len(per_test) == 30 and set(per_test.values()) == {1}, per_test  # every test exactly once
    assert Counter(r.outcome.value for r in final) == {"passed": 28, "failed": 1, "skipped": 1}
    assert (after.status, after.exit_code) == (RunStatus.finished, 1)
    assert after.counts == {"passed": 28, "failed": 1, "skipped": 1}
    # what had a result before the kill did not run again
    executions = _executions(root)
    for nodeid in before:
        assert executions[nodeid] == ran_before[nodeid] == 1, nodeid
    cases = [(c.get("classname"), c.get("name")) for c in ET.parse(root / "junit.xml").getroot().iter("testcase")]
    assert len(cases) == 30 and len(set(cases)) == 30, cases

    again = run_cli(root, "run", "--resume", run.run_id, "--store", store_path, env=env)
    assert again.returncode == 4, again.log
    assert f"run {run.run_id} finished (exit code 1): nothing to resume" in again.stderr, again.log
