"""Faults: tests that kill their worker, hang, or fail once. The run must survive and say so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from execution.conftest import (
    TIMEOUT,
    by_nodeid,
    clean_env,
    outcome_counts,
    run_testfleet,
)
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

PASSING = "".join(f"def test_fine_{i}():\n    pass\n\n\n" for i in range(8))


def test_segfault_and_os_exit_are_reported_crashed_and_retried_once(suite) -> None:
    root = suite({
        "tests/test_crash.py": """
            import ctypes
            import os


            def test_segfault():
                ctypes.string_at(0)


            def test_exits():
                os._exit(3)
            """,
        "tests/test_fine.py": PASSING,
    })
    ran = run_testfleet(root)
    assert ran.returncode == 1, ran.log
    assert outcome_counts(ran.output) == {"passed": 8, "crashed": 2}, ran.log
    attempts = by_nodeid(ran.results())
    assert len(attempts) == 10
    for nodeid in ("tests/test_crash.py::test_segfault", "tests/test_crash.py::test_exits"):
        tries = attempts[nodeid]
        assert [r.attempt for r in tries] == [1, 2], (nodeid, tries)  # retried once, not again
        assert all(r.outcome == "crashed" for r in tries)
        assert [r.final for r in tries] == [False, True]
    segv = attempts["tests/test_crash.py::test_segfault"][-1]
    assert "SIGSEGV" in segv.message, segv.message
    assert "test_segfault" in segv.longrepr  # faulthandler's traceback shows where it crashed
    exited = attempts["tests/test_crash.py::test_exits"][-1]
    assert "code 3" in exited.message, exited.message
    for nodeid, tries in attempts.items():
        if nodeid.startswith("tests/test_fine.py"):
            assert [r.outcome for r in tries] == ["passed"], tries
    assert "CRASHED tests/test_crash.py::test_segfault" in ran.stdout


def test_no_worker_restarts_left_ends_the_run_with_the_rest_not_run(suite) -> None:
    root = suite({
        "tests/test_a_crash.py": """
            import os


            def test_exits_first():
                os._exit(3)
            """,
        "tests/test_b_rest.py": PASSING,
    })
    # One worker, so that when it dies there is nobody left to run the rest.
    ran = run_testfleet(root, "--max-worker-restarts", "0", workers=1)
    assert ran.returncode == 2, ran.log
    assert "not run" in ran.output, ran.log
    results = ran.results()
    assert [(r.nodeid, r.outcome) for r in results] == [("tests/test_a_crash.py::test_exits_first", "crashed")]
    run = ran.run()
    assert run.exit_code == 2 and run.status == "interrupted"


def test_timeout_kills_the_hanging_test_and_the_run_goes_on(suite, tmp_path: Path) -> None:
    woke = tmp_path / "woke"
    root = suite({
        "tests/test_hang.py": f"""
            import time
            from pathlib import Path


            def test_sleeps_for_a_minute():
                time.sleep(60)
                Path({str(woke)!r}).write_text("the sleep was not interrupted")


            def test_quick():
                pass
            """,
        "tests/test_fine.py": PASSING,
    })
    ran = run_testfleet(root, "--timeout", "1")  # run_testfleet fails the test if it hangs
    assert not woke.exists(), "the timed-out test was not killed"
    assert ran.returncode == 1, ran.log
    assert outcome_counts(ran.output) == {"passed": 9, "timeout": 1}, ran.log
    attempts = by_nodeid(ran.results())
    hung = attempts["tests/test_hang.py::test_sleeps_for_a_minute"]
    assert len(hung) == 1 and hung[0].outcome == "timeout", hung
    assert "test_sleeps_for_a_minute" in hung[0].message
    # faulthandler's dump of the killed worker names the function that hung
    assert "in test_sleeps_for_a_minute" in hung[0].longrepr, hung[0].longrepr


def test_reruns_make_a_flaky_test_pass_on_another_worker(suite, tmp_path: Path) -> None:
    state, seen = tmp_path / "flaky-state", tmp_path / "seen"
    seen.mkdir()
    others = "".join(f"""

def test_other_{i}():
    Path({str(seen)!r}, os.environ["TESTFLEET_WORKER"]).touch()
""" for i in range(12))
    root = suite({
        "tests/test_flaky.py": textwrap.dedent(f"""
            import os
            import time
            from pathlib import Path

            STATE = Path({str(state)!r})
            SEEN = Path({str(seen)!r})


            def test_flaky():
                me = os.environ["TESTFLEET_WORKER"]
                if STATE.exists():
                    return
                # Fail only once the other worker has run something: it is then up and can take
                # the rerun (a sync point through files, not a sleep that hopes).
                deadline = time.monotonic() + 60
                while not [p for p in SEEN.iterdir() if p.name != me] and time.monotonic() < deadline:
                    time.sleep(0.01)
                STATE.write_text(me)
                assert False, "fails the first time"
            """) + others,
    })
    ran = run_testfleet(root, "--reruns", "2")
    assert ran.returncode == 0, ran.log
    summary = [line for line in ran.stdout.splitlines() if " in " in line and "passed" in line][-1]
    assert "13 passed" in summary and "1 flaky" in summary, summary
    tries = by_nodeid(ran.results())["tests/test_flaky.py::test_flaky"]
    assert [(r.attempt, r.outcome) for r in tries] == [(1, "failed"), (2, "passed")], tries
    assert tries[0].worker != tries[1].worker, "the rerun should go to another worker"
    assert tries[0].worker == state.read_text()
    assert tries[1].flaky and tries[1].final and not tries[0].final
    assert ran.run().flaky == 1


def test_a_test_that_always_fails_is_rerun_then_reported_failed(suite) -> None:
    root = suite({
        "tests/test_bad.py": """
            def test_always_fails():
                assert False, "never passes"
            """,
        "tests/test_fine.py": PASSING,
    })
    ran = run_testfleet(root, "--reruns", "1")
    assert ran.returncode == 1, ran.log
    assert outcome_counts(ran.output) == {"failed": 1, "passed": 8}, ran.log
    tries = by_nodeid(ran.results())["tests/test_bad.py::test_always_fails"]
    assert [(r.attempt, r.outcome, r.final) for r in tries] == [(1, "failed", False), (2, "failed", True)]
    assert not any(r.flaky for r in tries)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has finished


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_ctrl_c_interrupts_a_long_test_and_still_tears_fixtures_down(suite, tmp_path: Path) -> None:
    started, woke, torn = tmp_path / "started", tmp_path / "woke", tmp_path / "torn-down"
    root = suite({
        "tests/conftest.py": f"""
            import os
            from pathlib import Path

            import pytest


            @pytest.fixture(scope="session", autouse=True)
            def service():
                yield
                Path({str(torn)!r}).write_text(os.environ["TESTFLEET_WORKER"])
            """,
        "tests/test_long.py": f"""
            import os
            import time
            from pathlib import Path


            def test_long():
                Path({str(started)!r}).write_text(str(os.getpid()))
                time.sleep(60)
                Path({str(woke)!r}).touch()
            """,
    })
    store = root / "s.duckdb"
    # Its own process group, as a shell gives a foreground job: Ctrl-C goes to the whole group.
    # A foreground job also has Ctrl-C's default action, whatever this process has: a shell runs
    # background jobs (`cmd &`) with SIGINT ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "testfleet", "run", "--store", str(store), "--workers", "1"],
                            cwd=root, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not started.exists() or not started.read_text():  # the test is running
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    worker_pid = int(started.read_text())
    assert proc.returncode == 2, output
    assert not woke.exists()
    assert not _alive(worker_pid), "a worker outlived the interrupted run"
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
    assert run.status == "interrupted" and run.exit_code == 2
    # pytest (and pytest-xdist) interrupt the test and run the fixtures' teardown
    assert torn.exists(), f"session fixture teardown did not run after Ctrl-C\n{output}"
