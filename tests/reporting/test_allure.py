"""Allure 2 results: every file valid against the shipped schema, what Allure shows (status,
labels, parameters, flaky, retries, attachments), identities stable across runs, and the folder
read by the real ``allure generate`` where the Allure command line is installed."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import javaproperties
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.model import Case, Outcome, Result, Run, Variant
from testfleet.reporting.allure import (
    SCHEMA_FILE,
    allure_history_id,
    allure_test_case_id,
    validate_allure,
    write_allure,
    write_allure_stored,
)
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_run(run_id: str = "run-1", started: datetime = T0) -> Run:
    return Run(run_id=run_id, started_at=started, seed=7, workers=2, git_sha="abc123",
               settings={"environment": {"host": "ci-box", "python": "3.12.1", "os": "Linux 6"}})


def result(nodeid: str, outcome: str, at: float = 0.0, run_id: str = "run-1", **fields: Any) -> Result:
    base: dict[str, Any] = dict(run_id=run_id, variant_id="v-" + nodeid, case_id="c-" + nodeid,
                                nodeid=nodeid, outcome=Outcome(outcome), worker="gw0", duration=0.5,
                                started_at=T0 + timedelta(seconds=at),
                                finished_at=T0 + timedelta(seconds=at + 0.5))
    base.update(fields)
    return Result(**base)


def scenario(run_id: str = "run-1") -> list[Result]:
    boom = "def test_bad():\n>       assert 1 == 2\nE       assert 1 == 2\n\ntests/unit/test_a.py:9: AssertionError"
    return [
        result("tests/unit/test_a.py::test_ok", "passed", stdout="hello out\n", log="INFO started\n",
               keywords=["test_ok", "critical"],
               telemetry={"worker.rss_mb": {"mean": 80.5, "max": 81.0, "p95": 81.0, "delta": 0.5, "count": 5}},
               phases={"setup": {"outcome": "passed", "duration": 0.1},
                       "call": {"outcome": "passed", "duration": 0.3},
                       "teardown": {"outcome": "passed", "duration": 0.1}}, run_id=run_id),
        result("tests/unit/test_a.py::TestK::test_bad", "failed", at=1, message="assert 1 == 2",
               longrepr=boom, stderr="oops\n", fingerprint="f123", run_id=run_id),
        result("tests/unit/test_a.py::test_setup", "error", at=2, message="RuntimeError: no db",
               longrepr="E   RuntimeError: no db", run_id=run_id,
               phases={"setup": {"outcome": "failed", "duration": 0.2, "longrepr": "E   RuntimeError: no db"}}),
        result("tests/unit/test_a.py::test_hang", "timeout", at=3, message="killed after 2.0s", run_id=run_id),
        result("tests/unit/test_a.py::test_segv", "crashed", at=4, message="signal 11", run_id=run_id),
        result("tests/unit/test_a.py::test_skip", "skipped", at=5, message="Skipped: not here", run_id=run_id),
        result("tests/unit/test_a.py::test_xfail", "xfailed", at=6, message="reason: bug 12", run_id=run_id),
        result("tests/unit/test_a.py::test_xpass", "xpassed", at=7, run_id=run_id),
        result("tests/unit/test_a.py::test_p[1-a]", "passed", at=8, run_id=run_id),
        result("tests/unit/test_a.py::test_flaky", "failed", at=9, final=False, attempt=1,
               message="AssertionError: first", longrepr="E AssertionError: first", run_id=run_id),
        result("tests/unit/test_a.py::test_flaky", "passed", at=10, attempt=2, flaky=True, worker="gw1",
               run_id=run_id),
        result("tests/unit/test_a.py::test_x[baseline]", "failed", at=11, variant_id="explored-1",
               message="ValueError: -1", run_id=run_id),
    ]


VARIANTS = {"v-tests/unit/test_a.py::test_p[1-a]": {"origin": "baseline", "params": {"n": 1, "s": "a"}},
            "explored-1": {"origin": "edge", "params": {"amount": -1, "currency": "EUR"}}}


def series() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    t = T0.timestamp() + np.arange(0, 12, 0.5)
    return {("worker.cpu_percent", "gw0"): (t, np.linspace(0, 90, len(t))),
            ("worker.rss_mb", "gw0"): (t, np.full(len(t), 80.0))}


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    """The result documents by name, the final attempt winning (the flaky test has two)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*-result.json")):
        doc = json.loads(path.read_text())
        if doc["name"] not in out or doc["stop"] > out[doc["name"]]["stop"]:
            out[doc["name"]] = doc
    return out


def labels(doc: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in doc["labels"] if label["name"] == name]


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return write_allure(tmp_path / "allure-results", make_run(), scenario(), variants=VARIANTS,
                        collect_errors=[{"nodeid": "tests/unit/test_broken.py", "longrepr": "SyntaxError"}],
                        telemetry=series())


def test_every_file_is_valid_against_the_shipped_schema(written: Path) -> None:
    assert validate_allure(written) == []
    names = {p.name for p in written.iterdir()}
    assert {"executor.json", "categories.json", "environment.properties"} <= names
    assert len([n for n in names if n.endswith("-result.json")]) == 13  # 12 attempts + 1 collection error
    assert len([n for n in names if n.endswith("-container.json")]) == 12


def test_the_schema_refuses_what_allure_would_not_read(written: Path) -> None:
    """The check can fail: a misspelt field, an unknown status, a missing attachment."""
    path = next(written.glob("*-result.json"))
    doc = json.loads(path.read_text())
    doc["history_id"] = doc.pop("historyId")
    doc["status"] = "error"
    doc["attachments"] = [{"name": "gone", "source": "0000-attachment.txt", "type": "text/plain"}]
    path.write_text(json.dumps(doc))
    problems = "\n".join(validate_allure(written))
    assert "history_id" in problems and "'error' is not one of" in problems
    assert "0000-attachment.txt is missing" in problems
    assert json.loads(SCHEMA_FILE.read_text())["$defs"]["testResult"]["unevaluatedProperties"] is False


def test_status_mapping_details_and_flaky(written: Path) -> None:
    docs = documents(written)
    status = {name: doc["status"] for name, doc in docs.items()}
    assert status == {"test_ok": "passed", "test_bad": "failed", "test_setup": "broken", "test_hang": "broken",
                      "test_segv": "broken", "test_skip": "skipped", "test_xfail": "skipped",
                      "test_xpass": "passed", "test_p[1-a]": "passed", "test_flaky": "passed",
                      "test_x[edge: amount=-1, currency='EUR']": "failed",
                      "tests/unit/test_broken.py": "broken"}
    assert docs["test_bad"]["statusDetails"] == {"message": "assert 1 == 2", "trace": scenario()[1].longrepr}
    assert docs["test_hang"]["statusDetails"]["message"] == "timeout: killed after 2.0s"
    assert docs["test_segv"]["statusDetails"]["message"] == "crashed: signal 11"
    assert docs["test_skip"]["statusDetails"] == {"message": "not here"}
    assert docs["test_xfail"]["statusDetails"]["message"] == "XFAIL bug 12"
    assert docs["test_flaky"]["statusDetails"] == {"flaky": True}
    assert docs["test_ok"]["start"] == int(T0.timestamp() * 1000)
    assert docs["test_ok"]["stop"] - docs["test_ok"]["start"] == 500
    # the categories file sends timeouts and crashes to their own category by these prefixes
    categories = json.loads((written / "categories.json").read_text())
    assert [c["name"] for c in categories][:2] == ["Timed out", "Worker crashed"]


def test_labels_parameters_and_names(written: Path) -> None:
    docs = documents(written)
    bad = docs["test_bad"]
    assert labels(bad, "parentSuite") == ["tests.unit"] and labels(bad, "suite") == ["test_a"]
    assert labels(bad, "subSuite") == ["TestK"] and labels(bad, "host") == ["ci-box"]
    assert labels(bad, "thread") == ["gw0"] and labels(bad, "framework") == ["testfleet"]
    assert labels(bad, "language") == ["python"] and labels(bad, "severity") == ["normal"]
    assert bad["fullName"] == "tests/unit/test_a.py::TestK::test_bad"
    assert labels(docs["test_ok"], "severity") == ["critical"]
    assert labels(docs["test_flaky"], "thread") == ["gw1"]
    assert docs["test_p[1-a]"]["parameters"] == [{"name": "n", "value": "1"}, {"name": "s", "value": "a"}]
    explored = docs["test_x[edge: amount=-1, currency='EUR']"]
    assert explored["parameters"] == [{"name": "amount", "value": "-1"}, {"name": "currency", "value": "EUR"},
                                      {"name": "origin", "value": "edge", "excluded": True}]
    fixtures = [json.loads(p.read_text()) for p in written.glob("*-container.json")]
    setup_error = next(c for c in fixtures if c["name"].endswith("test_setup"))
    assert setup_error["children"] == [docs["test_setup"]["uuid"]]
    assert setup_error["befores"][0]["status"] == "broken"
    assert "RuntimeError: no db" in setup_error["befores"][0]["statusDetails"]["trace"]


def test_attachments_hold_output_logs_and_telemetry(written: Path) -> None:
    ok = documents(written)["test_ok"]
    by_name = {a["name"]: a for a in ok["attachments"]}
    assert set(by_name) == {"stdout", "log", "telemetry", "telemetry chart"}
    assert (written / by_name["stdout"]["source"]).read_text() == "hello out\n"
    assert by_name["stdout"]["source"].endswith("-attachment.txt")
    assert (written / by_name["log"]["source"]).read_text() == "INFO started\n"
    assert (written / by_name["telemetry"]["source"]).read_text().splitlines() == [
        "metric,mean,max,p95,delta,count", "worker.rss_mb,80.5,81,81,0.5,5"]
    chart = (written / by_name["telemetry chart"]["source"]).read_text()
    assert by_name["telemetry chart"]["type"] == "image/svg+xml"
    assert "worker.cpu_percent" in chart and "worker.rss_mb" in chart and "<polyline" in chart
    import xml.etree.ElementTree as ET

    ET.fromstring(chart)  # well-formed
    bad = documents(written)["test_bad"]
    assert [a["name"] for a in bad["attachments"]] == ["stderr", "telemetry chart"]


def test_history_ids_are_stable_across_runs_and_differ_by_parameters(tmp_path: Path) -> None:
    first = documents(write_allure(tmp_path / "a", make_run(), scenario(), variants=VARIANTS))
    later = make_run("run-2", T0 + timedelta(days=1))
    second = documents(write_allure(tmp_path / "b", later, scenario("run-2"), variants=VARIANTS))
    assert {n: d["historyId"] for n, d in first.items()} == {n: d["historyId"] for n, d in second.items()}
    assert {d["uuid"] for d in first.values()}.isdisjoint(d["uuid"] for d in second.values())
    assert len({d["historyId"] for d in first.values()}) == len(first)
    assert allure_history_id("t.py::test_p[1]", {"n": 1}) != allure_history_id("t.py::test_p[1]", {"n": 2})
    case_id = allure_test_case_id
    assert case_id("t.py::test_p[1]") == case_id("t.py::test_p[2]") != case_id("t.py::test_q")
    # writing the same run again replaces its files instead of adding copies
    again = write_allure(tmp_path / "a", make_run(), scenario(), variants=VARIANTS)
    assert len(list(again.glob("*-result.json"))) == len(scenario())


def test_environment_and_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "991")
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "17")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    folder = write_allure(tmp_path / "r", make_run(), scenario()[:1])
    env = javaproperties.loads((folder / "environment.properties").read_text(encoding="latin-1"))
    assert env["testfleet.run"] == "run-1" and env["host"] == "ci-box" and env["git.sha"] == "abc123"
    executor = json.loads((folder / "executor.json").read_text())
    assert executor["type"] == "github" and executor["buildOrder"] == 17
    assert executor["buildUrl"] == "https://github.example/acme/shop/actions/runs/991"
    assert validate_allure(folder) == []


text = st.text(st.characters(codec="utf-8") | st.sampled_from(["\x00", "\ud800", "\u2028"]), max_size=30)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=text, stdout=text, value=st.one_of(text, st.integers(), st.floats(allow_nan=True), st.none()),
       name=text, outcome=st.sampled_from(list(Outcome)))
def test_any_text_gives_valid_files(tmp_path_factory: pytest.TempPathFactory, message: str, stdout: str,
                                    value: Any, name: str, outcome: Outcome) -> None:
    folder = tmp_path_factory.mktemp("any")
    nodeid = f"tests/test_{abs(hash(name)) % 1000}.py::test_x[{name}]"
    results = [result(nodeid, outcome.value, message=message, stdout=stdout, longrepr=message)]
    write_allure(folder, make_run(), results, variants={results[0].variant_id: {"origin": "random",
                                                                                "params": {name: value}}})
    assert validate_allure(folder) == []


def test_a_stored_run_gives_markers_parameters_and_charts(tmp_path: Path) -> None:
    """The store-based builder (what `testfleet report RUN --alluredir` calls)."""
    run = make_run()
    case = Case.from_nodeid("tests/test_s.py::test_s[3]", markers=["blocker", "smoke", "parametrize"])
    variant = Variant.of(case, {"size": 3})
    stored = result(case.nodeid, "failed", variant_id=variant.variant_id, case_id=case.case_id,
                    message="boom", telemetry={"worker.cpu_percent": {"mean": 5.0}})
    with Store.open(tmp_path / "s.duckdb") as store:
        store.begin_run(run)
        store.add_cases([case], run_id=run.run_id)
        store.add_variants([variant])
        store.append_results([stored])
        (t, v), = [series()[("worker.cpu_percent", "gw0")]]
        TelemetryStore(store).append_series(run.run_id, ["gw0"] * len(t), t, ["worker.cpu_percent"] * len(t), v)
        store.finish_run(run.model_copy(update={"finished_at": T0 + timedelta(seconds=20)}))
        folder = write_allure_stored(tmp_path / "out", store, "last")
    assert validate_allure(folder) == []
    doc = documents(folder)["test_s[3]"]
    assert labels(doc, "severity") == ["blocker"] and labels(doc, "tag") == ["smoke"]
    assert doc["parameters"] == [{"name": "size", "value": "3"}]
    assert doc["historyId"] == allure_history_id(case.nodeid, {"size": 3})
    assert "telemetry chart" in [a["name"] for a in doc["attachments"]]


_ALLURE_HOME = Path(tempfile.gettempdir()) / "testfleet-allure-commandline"


def allure_cli() -> str | None:
    """The ``allure`` command line: on PATH, or installed from npm's registry into a cache folder
    outside the repository (the environment is left as it is). None where it cannot be had: no
    Java to run it, no npm to fetch it, or the registry refused (the test then skips, saying so)."""
    found = shutil.which("allure")
    if found:
        return found
    local = _ALLURE_HOME / "node_modules" / ".bin" / "allure"
    if local.exists():
        return str(local)
    if shutil.which("java") is None or shutil.which("npm") is None:
        return None
    _ALLURE_HOME.mkdir(parents=True, exist_ok=True)
    with (_ALLURE_HOME / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across xdist workers
        if not local.exists():
            subprocess.run(["npm", "install", "--prefix", str(_ALLURE_HOME), "--no-audit", "--no-fund",
                            "allure-commandline"], capture_output=True, timeout=600, check=False)
    return str(local) if local.exists() else None


@pytest.mark.slow
def test_allure_generate_reads_the_results(written: Path, tmp_path: Path) -> None:
    allure = allure_cli()
    if allure is None:
        pytest.skip("the Allure command line is neither installed nor installable here (it needs Java and npm)")
    report = tmp_path / "report"
    # a one-shot JVM: the quick JIT tier and one GC thread halve its CPU time
    env = {**os.environ, "JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1"}
    done = subprocess.run([allure, "generate", str(written), "-o", str(report), "--clean"],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((report / "widgets" / "summary.json").read_text())
    assert summary["statistic"] == {"failed": 2, "broken": 4, "skipped": 2, "passed": 4, "unknown": 0, "total": 12}
    assert summary["reportName"] == "testfleet run run-1"

    def leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node] if "children" not in node else [x for c in node["children"] for x in leaves(c)]

    suites = json.loads((report / "data" / "suites.json").read_text())
    tests = {leaf["name"]: leaf for leaf in leaves(suites)}
    assert tests["test_flaky"]["flaky"] is True and tests["test_flaky"]["retriesCount"] == 1
    assert tests["test_bad"]["status"] == "failed" and tests["test_hang"]["status"] == "broken"
    case = json.loads((report / "data" / "test-cases" / f"{tests['test_p[1-a]']['uid']}.json").read_text())
    assert case["parameters"] == [{"name": "n", "value": "1"}, {"name": "s", "value": "a"}]
    categories = json.loads((report / "data" / "categories.json").read_text())
    assert {c["name"] for c in categories["children"]} >= {"Timed out", "Worker crashed", "Product defects"}


def test_a_file_in_place_of_the_folder_is_one_clear_error(tmp_path: Path) -> None:
    from testfleet.errors import OutputError

    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        write_allure(tmp_path / "taken", make_run(), scenario())
    assert (tmp_path / "taken").read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
