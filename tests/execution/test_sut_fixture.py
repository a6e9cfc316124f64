"""``testfleet_instance``: each worker starts and owns its own instance of the SUT declared in
``[tool.testfleet.sut]`` (the bundled inventory service, for real), plain pytest gets one, every
instance is stopped at the end, and a failing test carries the instance's log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil

from execution.conftest import make_suite, run_pytest, run_testfleet

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"

TESTS = """
import json, os
from pathlib import Path

import httpx
import pytest


@pytest.mark.parametrize("n", range(8))
def test_health(testfleet_instance, n):
    answer = httpx.get(testfleet_instance.base_url + "/health", timeout=5)
    assert answer.status_code == 200
    seen = Path(__file__).parent.parent / "seen"
    seen.mkdir(exist_ok=True)
    (seen / f"{n}.json").write_text(json.dumps({
        "pid": testfleet_instance.pid, "port": testfleet_instance.port,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}))
"""


def _project(tmp_path: Path, extra_tests: str = "") -> Path:
    pyproject = (f"[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
                 f"command = {json.dumps(sys.executable + ' ' + str(SERVICE) + ' --port {port}')}\n"
                 "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n")
    return make_suite(tmp_path / "p", {"pyproject.toml": pyproject,
                                       "tests/test_api.py": TESTS + extra_tests})


def _seen(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((project / "seen").glob("*.json"))]


def test_each_worker_owns_an_instance_and_all_stop(tmp_path: Path) -> None:
    project = _project(tmp_path)
    ran = run_testfleet(project)
    assert ran.returncode == 0, ran.log
    seen = _seen(project)
    assert len(seen) == 8
    by_worker = {s["worker"]: (s["pid"], s["port"]) for s in seen}
    assert len(by_worker) == 2 and len({pid for pid, _ in by_worker.values()}) == 2
    for s in seen:  # one instance per worker: every test of a worker saw the same one
        assert by_worker[s["worker"]] == (s["pid"], s["port"])
    assert not any(psutil.pid_exists(pid) for pid, _ in by_worker.values())


def test_plain_pytest_gets_one_instance(tmp_path: Path) -> None:
    project = _project(tmp_path)
    ran = run_pytest(project)
    assert ran.returncode == 0, ran.log
    pids = {s["pid"] for s in _seen(project)}
    assert len(pids) == 1 and not psutil.pid_exists(pids.pop())


def test_a_failing_test_carries_the_sut_log(tmp_path: Path) -> None:
    project = _project(tmp_path, extra_tests="""

def test_breaks(testfleet_instance):
    httpx.get(testfleet_instance.base_url + "/items/404404", timeout=5)
    assert False, "the service said no"
""")
    ran = run_pytest(project, "-k", "breaks")
    assert ran.returncode == 1, ran.log
    assert "SUT log (running, last lines)" in ran.stdout
    assert "404404" in ran.stdout  # the request line the service logged


def test_without_a_sut_table_the_fixture_says_what_is_missing(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_x.py":
                                          "def test_x(testfleet_instance):\n    pass\n"})
    ran = run_pytest(project)
    assert ran.returncode == 1
    assert "needs a [tool.testfleet.sut] table" in ran.stdout


def test_a_bad_sut_table_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {
        "pyproject.toml": "[tool.testfleet.sut]\ncommand = \"x --port {port}\"\n"
                          "ready = {bogus = \"1\"}\n",
        "tests/test_x.py": "def test_x():\n    pass\n"})
    ran = run_testfleet(project)
    assert ran.returncode == 4
    assert "ready" in ran.stderr and "http, tcp, log" in ran.stderr
    assert "Traceback" not in ran.output


CRASH = """

import signal


def test_a_kills_the_sut(testfleet_instance):
    import time

    os.kill(testfleet_instance.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(testfleet_instance.pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{testfleet_instance.pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.01)


def test_b_uses_it_after(testfleet_instance):
    answer = httpx.get(testfleet_instance.base_url + "/health", timeout=5)
    assert answer.status_code == 200
"""


def test_a_crashed_sut_is_an_error_and_is_restarted(tmp_path: Path) -> None:
    project = _project(tmp_path, extra_tests=CRASH)
    ran = run_pytest(project, "-p", "no:randomly", "-k", "kills or uses_it", "-q")
    assert ran.returncode == 1, ran.log
    assert "the system under test crashed during this test (exit code -9)" in ran.stdout
    assert "restarted it on port" in ran.stdout
    assert "2 passed, 8 deselected, 1 error" in ran.stdout  # the killer's teardown is the error
