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


# A SUT with state on disk and in memory, whose config exploration varies: it lists what its
# working directory held when it started, keeps items in memory, and says which config it runs.
STATE_SUT = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

port, config_path, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
config = yaml.safe_load(open(config_path)) or {}
found_at_start = sorted(os.listdir(workdir))
with open(os.path.join(workdir, f"data-{os.getpid()}"), "w") as fh:
    fh.write(json.dumps(config))
items = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, {"status": "ok"})
        if self.path == "/state":
            return self._send(200, {"config": config, "found_at_start": found_at_start,
                                    "pid": os.getpid(), "port": port})
        if self.path.startswith("/items/"):
            key = self.path.rsplit("/", 1)[1]
            return self._send(200, items[key]) if key in items else self._send(404, {})
        self._send(404, {})

    def do_POST(self):
        key = str(len(items) + 1)
        items[key] = {"id": key}
        self._send(201, items[key])


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

STATE_SPACE = """
dimensions:
  mode: {type: choice, values: [a, b, c]}
  size: {type: int, min: 1, max: 8}
  flag: {type: bool}
constraints:
  - "mode == 'a' -> size <= 4"
  - "flag -> mode != 'b'"
"""

# the example's fixture pattern: a session base URL and client, data made through them
STATE_TESTS = """
import json

import httpx
import pytest


@pytest.fixture(scope="session")
def base_url(testfleet_instance):
    return str(testfleet_instance.base_url)


@pytest.fixture(scope="session")
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def item(client):
    return client.post("/items").json()["id"]


@pytest.mark.parametrize("n", range(2))
def test_state(client, item, testfleet_instance, n):
    state = client.get("/state").json()
    print("SUT-CONFIG " + json.dumps(state["config"], sort_keys=True))
    assert state["pid"] == testfleet_instance.pid  # the instance this worker owns, not a stranger
    assert client.get(f"/items/{item}").status_code == 200  # the fixture's data is on it
    assert state["found_at_start"] == [], "it started on another config's data"
    assert not (state["config"]["mode"] == "c" and state["config"]["flag"]), "c with flag breaks"
"""


def _state_project(tmp_path: Path) -> Path:
    command = f"{sys.executable} state_sut.py {{port}} {{config}} {{workdir}}"
    pyproject = ("[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
                 f"command = {json.dumps(command)}\n"
                 "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n"
                 "config = {mode = \"b\", size = 2, flag = false}\nconfig_space = \"sut.space.yaml\"\n")
    return make_suite(tmp_path / "p", {"pyproject.toml": pyproject, "state_sut.py": STATE_SUT,
                                       "sut.space.yaml": STATE_SPACE, "tests/test_state.py": STATE_TESTS})


def _holds(params: dict) -> bool:
    return (not (params["sut.mode"] == "a" and params["sut.size"] > 4)
            and not (params["sut.flag"] and params["sut.mode"] == "b"))


def test_exploring_the_sut_config_keeps_fixtures_constraints_and_attribution(tmp_path: Path) -> None:
    from testfleet.store.db import Store

    project = _state_project(tmp_path)
    ran = run_testfleet(project, "--explore", "30", "--seed", "3")
    assert ran.returncode == 1, ran.log  # the planted failure (mode c with flag) is found
    with Store.open(ran.store, read_only=True) as db:
        rows = db.query("SELECT v.origin, r.outcome, v.params::VARCHAR, r.message, r.stdout FROM results r "
                        "JOIN variants v USING (variant_id) WHERE r.run_id = $1 AND r.final",
                        [db.get_run("last").run_id])
    explored = [row for row in rows if row[0] != "baseline"]
    assert len(explored) >= 30
    for origin, outcome, params_text, message, stdout in rows:
        params = json.loads(params_text)
        sut = {k[4:]: v for k, v in params.items() if k.startswith("sut.")}
        ran_with = json.loads(stdout.split("SUT-CONFIG ", 1)[1].splitlines()[0])
        # every result is stored against the config its instance really ran
        assert ran_with == {"mode": "b", "size": 2, "flag": False, **sut}, (origin, params)
        # every explored variant keeps the space's constraints
        assert _holds({f"sut.{k}": v for k, v in ran_with.items()}), (origin, ran_with)
        # no connection refused, no stale fixture data, no leftover state: only the planted failure
        expected = "failed" if ran_with["mode"] == "c" and ran_with["flag"] else "passed"
        assert outcome == expected, (origin, params, message)
    # the minimal failing change is the one that matters
    assert "sut.flag=True" in ran.stdout and "sut.mode='c'" in ran.stdout, ran.stdout


def _state_of(instance) -> dict:
    import httpx

    return httpx.get(instance.info.base_url + "/state", timeout=5).json()


def test_each_config_starts_in_a_fresh_workdir_unless_state_persists(tmp_path: Path) -> None:
    from testfleet.execution.sut import SutInstance, SutSpec

    (tmp_path / "state_sut.py").write_text(STATE_SUT)
    common = {"command": f"{sys.executable} state_sut.py {{port}} {{config}} {{workdir}}",
              "ready": {"http": "http://127.0.0.1:{port}/health"}, "cwd": str(tmp_path),
              "start_timeout": 20.0}
    with SutInstance(SutSpec(**common), "w", tmp_path / "fresh", config={"mode": "a"}) as sut:
        first = _state_of(sut)
        assert first["found_at_start"] == [] and first["config"] == {"mode": "a"}
        sut.config = {"mode": "b"}
        sut.restart()
        second = _state_of(sut)
        # another config: nothing of the last one's data, and the same address
        assert second["found_at_start"] == [] and second["config"] == {"mode": "b"}
        assert second["port"] == first["port"]
        sut.restart()  # the same config again (as after a crash): its state is kept
        assert _state_of(sut)["found_at_start"] == [f"data-{second['pid']}"]

    spec = SutSpec(**common, persist_state=True)
    with SutInstance(spec, "w", tmp_path / "kept", config={"mode": "a"}) as sut:
        first = _state_of(sut)
        sut.config = {"mode": "b"}
        sut.restart()
        kept = [name for name in _state_of(sut)["found_at_start"] if name.startswith("data-")]
        assert kept == [f"data-{first['pid']}"]  # declared to persist
