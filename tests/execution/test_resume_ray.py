"""On Ray, what survives the loss of the driver: nothing of the run; ``--resume`` finishes it.

``testfleet run --backend ray`` without an address starts its own Ray instance (GCS, raylet,
workers). Its coordinator, the Ray driver, is SIGKILLed while an actor runs a test that blocks.
Every Ray process of that instance, the actor running the test included, must be gone within
``GONE_WITHIN`` seconds (Ray's own fate-sharing: an actor dies with the job that owns it, the
node processes with the process that started them), and ``testfleet run --resume last`` must
finish the run on a new Ray instance with every test once.

Skipped unless ``TESTFLEET_RAY_DRIVER_TEST=1``: starting Ray twice costs far more than this round's
15 s budget for a Ray test (Ray took 85 s to start on the loaded 2-core development machine).
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

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("TESTFLEET_RAY_DRIVER_TEST"),
    reason="starts a local Ray instance twice (> 15 s; 85 s each on a loaded 2-core machine): "
           "set TESTFLEET_RAY_DRIVER_TEST=1 to run it")]

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'testfleet[test]'")

from execution.conftest import TIMEOUT, make_suite, run_cli  # noqa: E402
from execution.test_ray_backend import end_ray_processes, new_ray_tmp, ray_env, ray_processes  # noqa: E402

from testfleet.model import RunStatus  # noqa: E402
from testfleet.store.db import Store  # noqa: E402

GONE_WITHIN = 10.0  # an actor notices its raylet is gone within a few seconds (3.5 s measured, loaded)

SUITE = '''
import os
import time
from pathlib import Path

ROOT = Path(os.environ["RAY_RESUME_DIR"])


def test_blocks():
    (ROOT / "started").write_text(str(os.getpid()))
    while not (ROOT / "go").exists():
        time.sleep(0.05)


def test_quick_0():
    pass


def test_quick_1():
    pass
'''


def test_killing_the_ray_driver_leaves_no_ray_process_and_the_run_resumes(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {"tests/test_r.py": SUITE})
    ray_tmp = new_ray_tmp()
    env = ray_env(ray_tmp) | {"RAY_RESUME_DIR": str(root)}
    store = root / "s.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "testfleet", "run", "--backend", "ray", "-n", "2", "--store",
                             str(store), "-q"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (root / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the blocking test never started"
            time.sleep(0.1)
        actor = int((root / "started").read_text())
        assert ray_processes(ray_tmp), "testfleet's own Ray instance runs under the private temp dir"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone_by = time.monotonic() + GONE_WITHIN
        while (ray_processes(ray_tmp) or psutil.pid_exists(actor)) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not psutil.pid_exists(actor), "the actor running a test outlived the driver"
        assert not ray_processes(ray_tmp), "Ray processes outlived the driver"
    finally:
        (root / "go").write_text("")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = end_ray_processes(ray_tmp)
        assert not left, left

    resumed = run_cli(root, "run", "--resume", "last", "--store", store, env=env)
    end_ray_processes(ray_tmp)
    assert resumed.returncode == 0, resumed.log
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        final = db.results(run.run_id, final_only=True)
    assert run.status == RunStatus.finished and run.backend == "ray"
    assert Counter(r.nodeid.split("::")[1] for r in final) == {"test_blocks": 1, "test_quick_0": 1, "test_quick_1": 1}
