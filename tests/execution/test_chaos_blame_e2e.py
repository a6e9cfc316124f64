"""A test that fails on an injected 503 is judged an infrastructure error, for real: two workers,
each with its own inventory service (a real HTTP server on 127.0.0.1) behind the real chaos proxy,
and an ``http_error`` fault (every request answered 503) on seat gw0 once 6 tests are done. Each
test asserts that its request got 200, so a test that meets the injected 503 fails with an
assertion error, which used to be its final verdict. Now each such attempt is retried, every test
passes in the end, and each blamed attempt has an ``injected_failure`` event that the summary
counts and ``testfleet show --events`` lists. A test that fails on its own during the same run
(no request: the proxy failed nothing of it) keeps its failure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from execution.conftest import run_cli, run_testfleet
from execution.test_chaos_e2e import SERVICE
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

N = 40

TESTS = f"""
import time

import httpx
import pytest


@pytest.mark.parametrize("n", range({N}))
def test_health(testfleet_instance, n):
    time.sleep(0.1)
    answer = httpx.get(testfleet_instance.base_url + "/health", timeout=10)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("n", range(4))
def test_fails_on_its_own(n):
    time.sleep(0.1)
    assert n < 0, "a real failure"
"""

# every request on gw0's proxy is answered 503 for 2 s, once 6 tests have their final result
SCHEDULE = """
faults:
  - {after_tests: 6, fault: http_error, target: gw0, duration: 2, params: {share: 1, status: 503}}
"""


def test_a_failure_on_an_injected_503_is_retried_as_infrastructure(tmp_path: Path) -> None:
    # breakers out of the way (high thresholds): this is about each result's verdict
    pyproject = ("[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
                 f"command = {json.dumps(sys.executable + ' ' + str(SERVICE) + ' --port {port}')}\n"
                 "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n\n"
                 "[tool.testfleet.breakers]\nconsecutive_errors = 100\nmin_calls = 100\n")
    project = tmp_path / "p"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "pyproject.toml").write_text(pyproject)
    (project / "chaos.yaml").write_text(SCHEDULE)
    (project / "tests" / "test_api.py").write_text(TESTS)

    ran = run_testfleet(project, "--chaos", "chaos.yaml", "--seed", "3")
    assert ran.returncode == 1, ran.log  # the four real failures
    store = Store.open(ran.store, read_only=True)
    try:
        run_id = store.query("SELECT run_id FROM runs")[0][0]
        blamed = TelemetryStore(store).events(run_id, kinds=["injected_failure"])
        (fault,) = TelemetryStore(store).events(run_id, kinds=["fault"])
        attempts = store.query("SELECT nodeid, attempt, worker, outcome, final, message FROM results "
                               "WHERE run_id = $1 ORDER BY nodeid, attempt", [run_id])
    finally:
        store.close()
    finals = {nodeid: outcome for nodeid, _a, _w, outcome, final, _m in attempts if final}
    assert len(finals) == N + 4
    assert {n: o for n, o in finals.items() if "health" in n} == {n: "passed" for n in finals if "health" in n}
    assert {n: o for n, o in finals.items() if "own" in n} == {n: "failed" for n in finals if "own" in n}

    # every attempt that met the 503 failed on its assertion, was blamed, and was not final
    met = [(n, a, w) for n, a, w, outcome, final, message in attempts if "503" in (message or "")]
    assert met, ran.log  # the fault hit gw0's tests
    assert all(outcome == "failed" and not final for *_, outcome, final, message in attempts
               if "503" in (message or "")), attempts
    assert sorted((e["nodeid"], e["attempt"], e["worker"]) for e in blamed) == sorted(met)
    for event in blamed:
        assert event["action"] == "infrastructure" and event["fault"] == "http_error"
        assert event["target"] == fault["target"] == "gw0" and event["injected"]["http_error"] >= 1
        assert "judged an infrastructure error" in event["message"]
    assert not any("own" in e["nodeid"] for e in blamed)  # a failure of its own is never blamed
    # the summary counts them, and the timeline says why
    assert f"{len(blamed)} failure{'s' if len(blamed) != 1 else ''} during injected network errors" in ran.stdout
    shown = run_cli(project, "show", run_id[:8], "--events", "--store", ran.store)
    assert shown.returncode == 0, shown.log
    assert "injected_failure" in shown.stdout and "failed 1 of its requests on purpose" in shown.stdout, shown.log
