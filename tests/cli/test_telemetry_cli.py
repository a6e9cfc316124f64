"""`testfleet telemetry`: what the workers sampled during a real run of a suite against the bundled
inventory service, read back from the project's store (one run shared by the assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli, run_testfleet

from testfleet.model import Outcome
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"

TESTS = """
import httpx
import pytest

import testfleet


@pytest.mark.parametrize("n", [1, 2, 3])
def test_stock(testfleet_instance, n):
    with httpx.Client(base_url=testfleet_instance.base_url, timeout=5) as client:
        for i in range(n):
            answer = client.post("/items", json={"name": f"bolt-{n}-{i}", "quantity": 2, "price": 1.0})
            assert answer.status_code == 201
        total = client.get("/items").json()["total"]
    testfleet.metric("items", total)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    command = f"{sys.executable} {SERVICE} --port {{port}}"
    # a 20 ms interval: even the first test, whose SUT starts during its setup, gets SUT samples
    pyproject = ("[tool.testfleet]\nworkers = 1\nstore = \"s.duckdb\"\ntelemetry_interval = 0.02\n\n"
                 "[tool.testfleet.sut]\n"
                 f"command = {json.dumps(command)}\n"
                 "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n")
    root = make_suite(tmp_path_factory.mktemp("telemetry") / "p",
                      {"pyproject.toml": pyproject, "tests/test_stock.py": TESTS})
    ran = run_testfleet(root, workers=None)
    assert ran.returncode == 0, ran.log
    return root


def telemetry(project: Path, *args: str):
    return run_cli(project, "telemetry", *args)


def table_rows(output: str) -> dict[str, str]:
    """Metric name -> its table row (the metric is the first cell of a row)."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃|").split("│") if c.strip()]
        if cells:
            rows[cells[0]] = line
    return rows


def test_results_in_the_store_carry_a_telemetry_summary(project: Path) -> None:
    with Store.open(project / "s.duckdb", read_only=True) as store:
        results = store.results(store.get_run("last").run_id)
    assert len(results) == 3 and all(r.outcome == Outcome.passed for r in results)
    for result in results:
        rss = result.telemetry["sut.rss_mb"]
        assert set(rss) == {"mean", "max", "p95", "delta", "count"}
        assert 1 < rss["mean"] <= rss["max"] < 4096
        # three tests against one instance: each saw all the items created so far
        assert result.telemetry["custom.items"]["count"] == 1
    totals = sorted(r.telemetry["custom.items"]["max"] for r in results)
    assert totals[-1] == 6.0 and len(set(totals)) == 3  # 1+2+3 items, whatever the order


def test_telemetry_last_lists_sampled_and_custom_metrics(project: Path) -> None:
    shown = telemetry(project, "last")
    assert shown.returncode == 0, shown.log
    rows = table_rows(shown.stdout)
    for name in ("sut.rss_mb", "sut.cpu_percent", "worker.rss_mb", "system.cpu_percent", "custom.items"):
        assert name in rows, shown.log
    assert "no anomalies flagged" in shown.stdout
    # the custom metric's row: 3 values, the largest the 6 items of the last test
    cells = rows["custom.items"].replace("│", " ").split()
    assert cells[:2] == ["custom.items", "3"] and "6" in cells[2:], rows["custom.items"]


def test_metric_glob_filters_the_table(project: Path) -> None:
    shown = telemetry(project, "last", "--metric", "sut.*")
    assert shown.returncode == 0, shown.log
    rows = table_rows(shown.stdout)
    assert "sut.rss_mb" in rows
    assert not any(name.startswith(("custom.", "worker.", "system.")) for name in rows), shown.log


def test_html_charts(project: Path) -> None:
    shown = telemetry(project, "last", "--html", "out.html")
    assert shown.returncode == 0, shown.log
    page = (project / "out.html").read_text(encoding="utf-8")
    assert "plotly" in page.lower()
    for name in ("sut.rss_mb", "custom.items"):
        assert name in page


def test_an_unknown_run_is_bad_input(project: Path) -> None:
    shown = telemetry(project, "nosuchrun")
    assert shown.returncode == 2, shown.log
    errors = [line for line in shown.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR:") and "nosuchrun" in errors[0], shown.log
    assert "Traceback" not in shown.output


def test_a_run_without_telemetry_says_so(project: Path) -> None:
    store = project / "off.duckdb"
    ran = run_testfleet(project, "--telemetry-interval", "0", store=store, workers=None)
    assert ran.returncode == 0, ran.log
    [result, *_] = ran.results()
    assert "sut.rss_mb" not in result.telemetry
    shown = telemetry(project, "last", "--store", str(store))
    assert shown.returncode == 0, shown.log
    assert "no telemetry recorded" in shown.stdout, shown.log
