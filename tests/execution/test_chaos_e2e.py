"""``testfleet run --chaos SCHEDULE``, for real: two workers, each with its own inventory service
behind the chaos proxy, and a schedule that delays, pauses and kills the SUT and kills a worker.
Every fault is an event in the store, the summary says what each broke, and the run still ends
with every test given exactly one final verdict. A bad schedule is refused with exit 4."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from execution.conftest import make_suite, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"
N = 48

TESTS = f"""
import json, time
from pathlib import Path

import httpx
import psutil
import pytest


@pytest.mark.parametrize("n", range({N}))
def test_health(testfleet_instance, n):
    time.sleep(0.15)
    answer = httpx.get(testfleet_instance.base_url + "/health", timeout=10)
    assert answer.status_code == 200
    listening = [c.laddr.port for c in psutil.Process(testfleet_instance.pid).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN]
    seen = Path(__file__).parent.parent / "seen"
    seen.mkdir(exist_ok=True)
    (seen / f"{{n}}.json").write_text(json.dumps({{"port": testfleet_instance.port, "sut": listening}}))
"""

SCHEDULE = """
faults:
  - {at: 1.5, fault: latency, target: any, duration: 1, params: {ms: 50}}
  - {at: 2.0, fault: pause_sut, target: any, duration: 0.3}
  - {at: 2.5, fault: kill_sut, target: any}
  - {at: 3.0, fault: kill_worker, target: any}
  - {after_tests: 30, fault: stop_worker, target: gw0, duration: 0.3}
"""


def _project(tmp_path: Path) -> Path:
    pyproject = ("[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
                 f"command = {json.dumps(sys.executable + ' ' + str(SERVICE) + ' --port {port}')}\n"
                 "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n")
    return make_suite(tmp_path / "p", {"pyproject.toml": pyproject, "chaos.yaml": SCHEDULE,
                                       "tests/test_api.py": TESTS})


def test_a_chaos_run_records_its_faults_and_gives_every_test_a_verdict(tmp_path: Path) -> None:
    project = _project(tmp_path)
    ran = run_testfleet(project, "--chaos", "chaos.yaml", "--seed", "5")
    assert ran.returncode in (0, 1), ran.log  # tests may fail under faults; the run itself completes
    assert "chaos: 5 faults injected" in ran.stdout, ran.log  # the summary's chaos section
    store = Store.open(ran.store, read_only=True)
    try:
        run_id = store.query("SELECT run_id FROM runs")[0][0]
        faults = TelemetryStore(store).events(run_id, kinds=["fault"])
        finals = store.query("SELECT nodeid, count(*) FROM results WHERE run_id = $1 AND final GROUP BY nodeid",
                             [run_id])
        finished = [t for (t,) in store.query("SELECT epoch(finished_at) FROM results WHERE run_id = $1 AND final "
                                              "ORDER BY finished_at", [run_id])]
    finally:
        store.close()
    # SUT faults wait for a SUT instance to exist (the order may change), none is skipped
    assert sorted(f["fault"] for f in faults) == ["kill_sut", "kill_worker", "latency", "pause_sut", "stop_worker"]
    # the fault keyed on progress came once 30 tests had their final result, not long after
    (stopped,) = [f["at"] for f in faults if f["fault"] == "stop_worker"]
    assert 30 <= sum(1 for t in finished if t <= stopped) <= 40, (stopped, finished)
    for fault in faults:
        assert fault["kind"] == "fault" and fault["target"].startswith("gw") and fault["at"] > 0
        assert set(fault) >= {"fault", "target", "at", "duration", "params"} and "skipped" not in fault
    assert len(finals) == N and all(count == 1 for _, count in finals)
    # the tests reached each SUT through its proxy: the port they hold is not the SUT's own
    seen = [json.loads(p.read_text()) for p in (project / "seen").glob("*.json")]
    assert seen and all(s["port"] not in s["sut"] and s["sut"] for s in seen)


def test_an_invalid_schedule_is_exit_4_naming_file_and_key(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_a.py": "def test_a():\n    pass\n",
                                          "bad.yaml": "faults:\n  - {at: 1, fault: latency}\n"})
    ran = run_testfleet(project, "--chaos", "bad.yaml")
    assert ran.returncode == 4, ran.log
    assert "bad.yaml [faults[0]]" in ran.stderr and "duration" in ran.stderr, ran.log
    assert not (project / "s.duckdb").exists()  # refused before the store or any worker
