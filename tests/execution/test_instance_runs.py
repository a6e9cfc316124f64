"""Runs with a declared SUT, end to end in real processes: a SUT that never becomes ready stops
the run (exit 2, the probe and the log in the message, the run recorded as an error), HTTP
scenario files are collected and run against each worker's instance, an instance's config can be
drawn from a space (the same seed, the same configs), and anomalies are flagged in the summary."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from execution.conftest import make_suite, run_cli, run_pytest, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"
PY = json.dumps(sys.executable)[1:-1]


def _sut_table(command: str, ready: str, extra: str = "") -> str:
    return (f"[tool.testfleet.sut]\ncommand = {json.dumps(command)}\nready = {ready}\n"
            f"start_timeout = 20.0\n{extra}")


def _service_project(root: Path, files: dict[str, str], *, workers: int = 2, extra: str = "",
                     settings: str = "") -> Path:
    pyproject = (f"[tool.testfleet]\nworkers = {workers}\n{settings}\n"
                 + _sut_table(f"{PY} {SERVICE} --port {{port}}",
                              '{http = "http://127.0.0.1:{port}/health"}', extra))
    return make_suite(root, {"pyproject.toml": pyproject, **files})


NEVER_READY = "import sys, time\nprint('booting the widget cache', flush=True)\ntime.sleep(60)\n"


def test_a_sut_that_never_becomes_ready_stops_the_run_with_exit_2(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {
        "never.py": NEVER_READY,
        "pyproject.toml": "[tool.testfleet]\nworkers = 2\n\n" + _sut_table(
            f"{PY} never.py --port {{port}}", '{http = "http://127.0.0.1:{port}/health"}')
            .replace("start_timeout = 20.0", "start_timeout = 1.5"),
        "tests/test_api.py": "def test_one(testfleet_instance):\n    pass\n\n"
                             "def test_two(testfleet_instance):\n    pass\n"})
    ran = run_testfleet(project)
    assert ran.returncode == 2, ran.log
    assert "ERROR: the system under test did not start" in ran.stderr
    assert "not ready after 1.5 s (waiting on http http://127.0.0.1:" in ran.stderr
    assert "booting the widget cache" in ran.stderr  # the last lines of its log
    assert "Traceback" not in ran.output
    run = ran.run()
    assert run.status == "error" and run.exit_code == 2
    assert not [r for r in ran.results() if r.outcome == "passed"]


def test_under_plain_pytest_a_sut_that_never_starts_exits_2_too(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {
        "never.py": "import sys\nprint('config is broken', flush=True)\nsys.exit(3)\n",
        "pyproject.toml": "[tool.testfleet]\n" + _sut_table(
            f"{PY} never.py --port {{port}}", '{tcp = "{port}"}'),
        "tests/test_api.py": "def test_one(testfleet_instance):\n    pass\n"})
    ran = run_pytest(project)
    assert ran.returncode == 2, ran.log
    assert "exited with code 3 before it was ready" in ran.stdout
    assert "config is broken" in ran.stdout


def test_a_sut_that_exits_is_said_at_once_and_the_workers_stop(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {
        "bad.py": "import sys\nprint('bad config line 3', flush=True)\nsys.exit(1)\n",
        "pyproject.toml": "[tool.testfleet]\nworkers = 2\n\n" + _sut_table(
            f"{PY} bad.py --port {{port}}", '{http = "http://127.0.0.1:{port}/health"}'),
        "tests/test_api.py": "def test_one(testfleet_instance):\n    pass\n\n"
                             "def test_two(testfleet_instance):\n    pass\n"})
    ran = run_testfleet(project)
    assert ran.returncode == 2, ran.log
    # said while the run stops (before the workers are gone), the whole message at the end
    assert re.search(r"gw\d: the system under test did not start: .* exited with code 1 before it "
                     r"was ready \(stopping the run\)", ran.stdout.replace("\n", " ")), ran.log
    assert "bad config line 3" in ran.stderr and "Traceback" not in ran.output
    assert "_pytest.outcomes.Exit" not in ran.output  # the worker leaves without rendering the Exit


def test_a_fixed_port_already_taken_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project = make_suite(tmp_path / "p", {
            "pyproject.toml": "[tool.testfleet]\n" + _sut_table(
                f"{PY} {SERVICE} --port {port}", f'{{tcp = "{port}"}}'),
            "tests/test_api.py": "def test_one(testfleet_instance):\n    pass\n"})
        ran = run_testfleet(project, "-n", "1")
    assert ran.returncode == 2, ran.log
    assert f"port {port} is already taken by another process" in ran.stderr


SCENARIOS = {
    "tests/create.scenario.yaml": """
        name: create then fetch
        params:
          qty: {type: int, min: 1, max: 50, default: 7}
        steps:
          - request: {method: POST, path: /items, json: {name: bolt, quantity: "{qty}", price: 2.5}}
            expect: {status: [201], schema: {type: object, required: [id]}}
            extract: {item_id: "$.id"}
          - request: {method: GET, path: "/items/{item_id}"}
            expect: {status: [200], contains: ["bolt"]}
        """,
    "tests/load.scenario.yaml": """
        name: health under load
        repeat: 60
        concurrency: 20
        steps:
          - request: {method: GET, path: /health}
            expect: {status: [200], max_latency_ms: 5000}
        """,
    "tests/wrong.scenario.yaml": """
        name: expects the impossible
        steps:
          - request: {method: GET, path: /items/999999}
            expect: {status: [200]}
        """,
    "tests/test_plain.py": "def test_plain(testfleet_instance):\n    assert testfleet_instance.port\n",
}


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    project = _service_project(tmp_path_factory.mktemp("scen") / "p", SCENARIOS)
    return project, run_testfleet(project, "-v")


def test_scenario_files_are_collected_and_run_against_the_instance(scenario_run) -> None:
    _project, ran = scenario_run
    assert ran.returncode == 1, ran.log
    assert ran.counts == {"passed": 3, "failed": 1}, ran.log
    by_id = {r.nodeid: r for r in ran.results(final_only=True)}
    assert by_id["tests/create.scenario.yaml::create then fetch"].outcome == "passed"
    wrong = by_id["tests/wrong.scenario.yaml::expects the impossible"]
    assert wrong.outcome == "failed"
    assert "GET" in wrong.longrepr and "404" in wrong.longrepr and "200" in wrong.longrepr
    assert "SUT log" in ran.stdout  # a failing scenario carries the instance's log, like a test


def test_scenario_latencies_are_in_the_result_telemetry(scenario_run) -> None:
    _project, ran = scenario_run
    load = next(r for r in ran.results(final_only=True) if r.nodeid.endswith("health under load"))
    latency = load.telemetry["http.latency_ms"]
    assert latency["count"] == 60 and 0 < latency["mean"] <= latency["p95"] <= latency["max"]
    assert "sut.rss_mb" in load.telemetry


def test_a_malformed_scenario_is_a_collection_error_naming_file_and_place(tmp_path: Path) -> None:
    project = _service_project(tmp_path / "p", {"tests/bad.scenario.yaml": """
        name: bad
        steps:
          - request: {method: FETCH, path: /x}
        """})
    ran = run_testfleet(project)
    assert ran.returncode == 2, ran.log
    assert "bad.scenario.yaml" in ran.output and "FETCH" in ran.output
    assert "steps[0]" in ran.output or "steps.0" in ran.output or "step 1" in ran.output


def test_scenarios_without_a_sut_use_the_base_url_option(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/h.scenario.yaml": """
        name: h
        steps:
          - request: {method: GET, path: /health}
        """})
    ran = run_pytest(project)
    assert ran.returncode == 1
    assert "declare [tool.testfleet.sut] or pass --testfleet-base-url" in ran.stdout


SEEN_CONFIG = """
import json, os
from pathlib import Path

def test_config(testfleet_instance):
    out = Path(__file__).parent.parent / "configs"
    out.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    text = Path(testfleet_instance.config_path).read_text()
    (out / f"{worker}.json").write_text(json.dumps({"config": testfleet_instance.config, "file": text}))
"""


def test_instance_configs_are_drawn_from_the_space_by_seed(tmp_path: Path) -> None:
    files = {"sut.space.yaml": "dimensions:\n  threads: {type: int, min: 1, max: 64}\n"
                               "  cache: {type: choice, values: [none, lru, lfu]}\n"
                               "constraints: ['cache == \"none\" -> threads <= 8']\n",
             "tests/test_cfg.py": SEEN_CONFIG}
    project = _service_project(tmp_path / "p", files, workers=1,
                               extra='config = {log = "debug"}\nconfig_space = "sut.space.yaml"\n'
                                     'draw_from_space = true\n')

    def configs(seed: int) -> dict:
        for old in (project / "configs").glob("*.json"):
            old.unlink()
        ran = run_testfleet(project, "--seed", str(seed), workers=1)  # one instance: gw0's draw
        assert ran.returncode == 0, ran.log
        [written] = (project / "configs").glob("*.json")  # whichever worker ran it
        return json.loads(written.read_text())

    first, again, other = configs(11), configs(11), configs(12)
    assert first == again
    cfg = first["config"]
    assert cfg["log"] == "debug" and 1 <= cfg["threads"] <= 64 and cfg["cache"] in ("none", "lru", "lfu")
    assert not (cfg["cache"] == "none" and cfg["threads"] > 8)
    assert f"threads: {cfg['threads']}" in first["file"]  # the instance's config file says so
    draws = [configs(seed)["config"] for seed in (12, 13, 14)]
    assert any(d != cfg for d in [other["config"], *draws])


def test_with_a_config_space_the_baseline_runs_the_declared_config_whatever_the_seed(tmp_path: Path) -> None:
    files = {"sut.space.yaml": "dimensions:\n  threads: {type: int, min: 1, max: 64}\n"
                               "  cache: {type: choice, values: [none, lru, lfu]}\n",
             "tests/test_cfg.py": SEEN_CONFIG}
    project = _service_project(tmp_path / "p", files, workers=2,
                               extra='config = {cache = "lru", threads = 4}\nconfig_space = "sut.space.yaml"\n')
    for seed in ("2", "3"):
        ran = run_testfleet(project, "--seed", seed)
        assert ran.returncode == 0, ran.log
        [written] = (project / "configs").glob("*.json")
        seen = json.loads(written.read_text())
        assert seen["config"] == {"cache": "lru", "threads": 4}, seed
        assert "threads: 4" in seen["file"]
        written.unlink()


def test_draw_from_space_needs_a_config_space(tmp_path: Path) -> None:
    project = _service_project(tmp_path / "p", {"tests/test_cfg.py": SEEN_CONFIG},
                               extra="draw_from_space = true\n")
    ran = run_testfleet(project)
    assert ran.returncode == 4, ran.log
    assert "draw_from_space: needs config_space" in ran.stderr and "Traceback" not in ran.output


JUMP = """
import os
import testfleet

def test_queue(testfleet_instance):
    testfleet.metric("queue_depth", float(os.environ.get("DEPTH", "10")))
"""


def test_an_outlying_metric_is_flagged_in_the_summary_and_stored(tmp_path: Path) -> None:
    project = _service_project(tmp_path / "p", {"tests/test_q.py": JUMP}, workers=1,
                               settings="anomaly_min_history = 3")
    # only the test's own metric is judged here: on a loaded machine a trivial test's duration and
    # CPU swing enough between runs to be flagged themselves, which is the monitor working
    for depth in ("10", "11", "10", "10"):
        ran = run_testfleet(project, env={"DEPTH": depth})
        assert ran.returncode == 0, ran.log
        assert "custom.queue_depth" not in ran.stdout
    ran = run_testfleet(project, env={"DEPTH": "500"})
    assert ran.returncode == 0, ran.log  # an anomaly is information, not a failure
    assert "telemetry anomalies" in ran.stdout
    assert "OUTLIER" in ran.stdout and "custom.queue_depth 500 vs baseline 10" in ran.stdout
    with Store.open(ran.store, read_only=True) as store:
        run_id = store.get_run("last").run_id
        events = TelemetryStore(store).events(run_id)
    outliers = [e for e in events if e["kind"] == "outlier" and e["metric"].startswith("custom.")]
    assert [e["metric"] for e in outliers] == ["custom.queue_depth"]
    assert outliers[0]["value"] == 500 and outliers[0]["baseline"] == 10
    assert outliers[0]["nodeid"] == "tests/test_q.py::test_queue" and outliers[0]["variant_id"]
    shown = run_cli(project, "telemetry", "last", "--store", ran.store)
    assert shown.returncode == 0 and "custom.queue_depth" in shown.stdout and "outlier" in shown.stdout
