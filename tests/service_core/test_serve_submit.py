"""``testfleet serve`` + ``testfleet submit``: a submitted run reads and ends like ``testfleet run``,
runs side by side or waits its turn, can be cancelled, and its events can be caught up on."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from execution.conftest import make_suite, outcome_counts, run_cli, run_testfleet

from testfleet.store.db import Store

from .conftest import Server, start_server

pytestmark = pytest.mark.slow  # real servers and runs: scheduled first in the parallel suite

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory"

FAILING = {"tests/test_a.py": """
    import pytest


    @pytest.mark.parametrize("i", range(12))
    def test_n(i):
        assert i != 7, "seven"
    """}


def _gated(name: str, waits_for: str, creates: str) -> dict[str, str]:
    """A test that passes only when ``waits_for`` appears (made by a test of another run) and
    first creates ``creates``: two such runs pass only if they run at the same time."""
    return {f"tests/test_{name}.py": f"""
        import time
        from pathlib import Path


        def test_{name}():
            Path({creates!r}).write_text("here")
            deadline = time.monotonic() + 120
            while not Path({waits_for!r}).exists():
                assert time.monotonic() < deadline, "the other run never ran beside this one"
                time.sleep(0.05)
        """}


def test_submit_gives_the_same_counts_and_exit_code_as_run_on_the_bundled_example(
        server: Server, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project / "inventory",
                    ignore=shutil.ignore_patterns("__pycache__", ".testfleet", ".hypothesis", ".pytest_cache"))
    local = run_testfleet(project, "inventory", store=tmp_path / "local.duckdb")
    submitted = server.submit(project, "inventory", "--workers", "2")
    assert local.returncode == 0, local.log
    assert submitted.returncode == local.returncode, submitted.output
    assert outcome_counts(submitted.output) == outcome_counts(local.output)
    assert f"store {server.store}" in submitted.stdout.replace("\n", "")  # the server's store, not a copy


def test_a_failing_run_exits_1_and_its_results_are_in_the_servers_store(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    ran = server.submit(project, "tests", "--workers", "2")
    assert ran.returncode == 1, ran.output
    assert "FAILED tests/test_a.py::test_n[7] - AssertionError: seven" in ran.stdout
    assert outcome_counts(ran.output) == {"failed": 1, "passed": 11}
    again = server.submit(project, "tests", "--workers", "1", "--", "-k", "not 7")
    assert again.returncode == 0 and outcome_counts(again.output) == {"passed": 11, "deselected": 1}, again.output
    assert server.stop() == 0
    with Store.open(server.store, read_only=True) as store:
        runs = store.list_runs()
        assert [r.exit_code for r in runs] == [0, 1]  # newest first: both runs, merged back
        first = store.results(runs[1].run_id, final_only=True)
        assert len(first) == 12 and sum(r.outcome == "failed" for r in first) == 1
        assert "submit" in " ".join(runs[0].argv)  # the command the user typed, not the server's


def test_runs_submitted_together_run_side_by_side_and_keep_their_own_results(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--max-concurrent-runs", "2")
    try:
        left = make_suite(tmp_path / "left", _gated("left", str(tmp_path / "right.flag"), str(tmp_path / "left.flag")))
        right = make_suite(tmp_path / "right",
                           _gated("right", str(tmp_path / "left.flag"), str(tmp_path / "right.flag")))
        first = server.start_submit(left, "tests", "--workers", "1")
        second = server.start_submit(right, "tests", "--workers", "1")
        out_first, _ = first.communicate(timeout=300)
        out_second, _ = second.communicate(timeout=300)
        assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    finally:
        server.stop()
    with Store.open(server.store, read_only=True) as store:
        runs = store.list_runs()
        nodeids = [{r.nodeid for r in store.results(run.run_id)} for run in runs]
    assert sorted(map(sorted, nodeids)) == [["tests/test_left.py::test_left"], ["tests/test_right.py::test_right"]]


def test_with_one_run_at_a_time_the_second_waits_for_the_first(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    first = server.start_submit(project, "tests", "-q")
    second = server.start_submit(project, "tests", "-q")
    first.communicate(timeout=300)
    second.communicate(timeout=300)
    events = server.events(until=lambda e: False, timeout=2)
    order = [(e["run_id"], e["kind"], e.get("status")) for e in events if e["kind"] in ("run", "end")]
    runs = list(dict.fromkeys(run_id for run_id, _, _ in order))
    assert len(runs) == 2
    end_of_first = order.index((runs[0], "end", None))
    start_of_second = order.index((runs[1], "run", "running"))
    assert end_of_first < start_of_second
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})  # numbered, none twice


def test_cancelling_a_running_run_interrupts_it_with_exit_2(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", _gated("blocked", str(tmp_path / "never.flag"), str(tmp_path / "started")))
    client = server.start_submit(project, "tests", "--workers", "1")
    started = server.events(until=lambda e: e["kind"] == "run" and e["status"] == "running")
    run_id = started[-1]["run_id"]
    server.events(f"/ws/runs/{run_id}", until=lambda e: e["kind"] == "running" and e.get("nodeid"))
    answer = server.post(f"/runs/{run_id}/cancel")
    assert answer.status_code == 202, answer.text
    out, err = client.communicate(timeout=300)
    assert client.returncode == 2, out + err
    again = server.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["place"] == "run_id"
    unknown = server.post("/runs/no-such-run/cancel")
    assert unknown.status_code == 404 and "no run no-such-run" in unknown.json()["error"]["message"]


def test_a_reconnecting_listener_catches_up_from_its_last_sequence_number(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    ran = server.submit(project, "tests", "--workers", "2")
    assert ran.returncode == 1
    run_id = server.events(until=lambda e: e["kind"] == "end")[-1]["run_id"]
    everything = server.events(f"/ws/runs/{run_id}")
    assert everything[-1]["kind"] == "end" and everything[-1]["exit_code"] == 1
    results = [e for e in everything if e["kind"] == "result"]
    assert len(results) == 12 and sum(e["outcome"] == "failed" for e in results) == 1
    assert "seven" in next(e["longrepr"] for e in results if e["outcome"] == "failed")
    middle = results[5]["seq"]
    rest = server.events(f"/ws/runs/{run_id}", after=middle)
    assert [e["seq"] for e in rest] == [e["seq"] for e in everything if e["seq"] > middle]
    console = "".join(e["text"] for e in everything if e["kind"] == "console")
    assert "1 failed, 11 passed" in console  # what the submit client printed came from these


def test_options_the_server_sets_are_refused_with_a_json_error(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    refused = server.submit(project, "tests", "--store", "mine.duckdb")
    assert refused.returncode == 4
    assert "--store is set by the server" in refused.stderr
    answer = server.post("/runs", params=[("arg", "--run-id=x")], content=b"not read",
                         headers={"Content-Type": "application/gzip"})
    assert answer.status_code == 400 and answer.json()["error"]["place"] == "arg"
    as_json = server.post("/runs", json={"arg": ["tests"]})
    assert as_json.status_code == 415 and as_json.json()["error"]["place"] == "Content-Type"
    unknown = server.post("/runs", params={"args": "tests"}, content=b"", headers={"Content-Type": "application/gzip"})
    assert unknown.status_code == 400 and unknown.json()["error"]["place"] == "args"
    assert server.submit(project, "tests").returncode == 1  # and it keeps serving


def test_submit_to_no_server_is_a_usage_error(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    ran = run_cli(project, "submit", "--server", "http://127.0.0.1:9", "tests")
    assert ran.returncode == 4
    assert "cannot reach the server" in ran.stderr and "--server" in ran.stderr


def test_run_with_a_dashboard_prints_its_url_and_ends_like_run(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    ran = run_testfleet(project, "tests", "--dashboard", store=tmp_path / "own.duckdb")
    assert ran.returncode == 1, ran.output
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/#run=\S+", ran.stderr), ran.stderr
    assert outcome_counts(ran.output) == {"failed": 1, "passed": 11}
    assert len(ran.results(final_only=True)) == 12  # in the user's own store


def test_report_files_of_a_submitted_run_come_back_where_the_command_asked(server: Server, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", FAILING)
    elsewhere = tmp_path / "out" / "report.json"
    ran = server.submit(project, "tests", "--junitxml", "reports/junit.xml", "--json", str(elsewhere))
    assert ran.returncode == 1, ran.output
    junit = (project / "reports" / "junit.xml").read_text()
    assert 'tests="12"' in junit and 'failures="1"' in junit
    summary = json.loads(elsewhere.read_text())["summary"]
    assert summary["failed"] == 1 and summary["passed"] == 11
    assert not (project / str(elsewhere).lstrip("/")).exists()  # not mirrored into the project
