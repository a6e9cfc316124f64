"""``testfleet analyze`` and ``testfleet flaky`` on real runs: the planted cause of a
parametrized suite's failures is found, clusters and flaky tests are listed, and every output
format is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

from execution.conftest import make_suite, run_cli, run_testfleet

GRID = {"tests/test_cache.py": """
    import pytest

    @pytest.mark.parametrize("size", [1, 10, 100, 1000])
    @pytest.mark.parametrize("mode", ["off", "lru", "lfu"])
    @pytest.mark.parametrize("threads", [1, 2, 4, 8, 16])
    def test_cache(mode, threads, size):
        assert not (mode == "off" and threads > 4), f"timeout after {threads * 100} ms"
"""}


def test_analyze_finds_the_planted_cause_across_runs(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", GRID)
    store = project / "s.duckdb"
    for _ in range(2):
        assert run_testfleet(project, store=store).returncode == 1
    ran = run_cli(project, "analyze", "--runs", "2", "--store", store, "--json", "a.json",
                  "--md", "a.md", "--html", "a.html")
    assert ran.returncode == 0, ran.log
    data = json.loads((project / "a.json").read_text())
    assert len(data["runs"]) == 2
    analysis = data["analysis"]
    assert (analysis["executions"], analysis["failures"]) == (120, 16)
    significant = {i["column"] for i in analysis["impacts"] if i["significant"]}
    assert {"mode", "threads"} <= significant and "size" not in significant
    assert any("mode=off" in rule["text"] for rule in analysis["rules"])
    (cluster,) = data["clusters"]
    assert cluster["count"] == 16 and len(cluster["tests"]) == 8
    assert "timeout after <n> ms" in cluster["message"]
    assert "mode" in (project / "a.md").read_text()
    assert "Failure rate by mode" in (project / "a.html").read_text()


def test_too_few_failures_is_said_plainly(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_one.py": """
        import pytest

        @pytest.mark.parametrize("n", range(20))
        def test_n(n):
            assert n != 7
    """})
    store = project / "s.duckdb"
    assert run_testfleet(project, store=store).returncode == 1
    ran = run_cli(project, "analyze", "--store", store)
    assert ran.returncode == 0, ran.log
    assert "not enough data" in ran.stdout
    assert "significant" not in ran.stdout


def test_flaky_lists_a_test_that_passed_on_rerun(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_flaky.py": """
        from pathlib import Path

        def test_sometimes(tmp_path_factory):
            marker = Path(__file__).with_name("attempted")
            first = not marker.exists()
            marker.write_text("x")
            assert not first, "first attempt fails"

        def test_steady():
            pass
    """})
    store = project / "s.duckdb"
    ran = run_testfleet(project, "--reruns", "1", store=store)
    assert ran.returncode == 0, ran.log
    listed = run_cli(project, "flaky", "--store", store, "--json", "f.json")
    assert listed.returncode == 0, listed.log
    assert "test_sometimes" in listed.stdout and "test_steady" not in listed.stdout
    (flaky,) = json.loads((project / "f.json").read_text())["flaky"]
    assert flaky["failures"] == 1 and flaky["executions"] == 2
    assert flaky["low"] <= flaky["score"] <= flaky["high"]


def test_unknown_run_is_one_message(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", GRID)
    store = project / "s.duckdb"
    run_testfleet(project, store=store)
    ran = run_cli(project, "analyze", "nope", "--store", store)
    assert ran.returncode == 2 and "Traceback" not in ran.output


EXPLORABLE = {"tests/test_cache.py": """
    import testfleet
    from testfleet import Choice, Int


    @testfleet.explore(cache=Choice(["on", "off"]), threads=Int(1, 16), size=Int(0, 100))
    def test_cache(cache, threads, size):
        assert not (cache == "off" and threads > 8), f"timeout with {threads} threads"
"""}


def test_confirm_runs_the_follow_up_as_an_experiment_and_gives_a_verdict(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", EXPLORABLE)
    store = project / "s.duckdb"
    assert run_testfleet(project, "--explore", "60", "--seed", "3", store=store).returncode == 1
    # six runs of the case, each a whole `testfleet run`: slow on a busy machine
    ran = run_cli(project, "analyze", "--store", store, "--confirm", "1", "--json", "a.json",
                  timeout=540)
    assert ran.returncode == 0, ran.log
    (confirmed,) = json.loads((project / "a.json").read_text())["confirmed"]
    assert len(confirmed["base"]) == 3 and len(confirmed["changed"]) == 3
    # the case fails exactly when cache=off and threads>8: one factor changed flips it
    assert confirmed["verdict"] == "confirmed", confirmed
    assert confirmed["base"] != confirmed["changed"]
    assert "confirmation" in ran.stdout and "confirmed:" in ran.stdout
    runs = run_cli(project, "runs", "--store", store)
    assert runs.stdout.count("\n") >= 7     # the explored run and six experiment runs


def test_next_abbreviates_long_values(tmp_path: Path) -> None:
    from analysis.stored import store_run

    store = tmp_path / "s.duckdb"
    store_run(store, "r1", [
        ("t::c", {"x": k % 4, "memo": "ab"[k % 2] * 2000, "k": k}, "gw0", k % 4 == 1, "baseline")
        for k in range(80)])
    ran = run_cli(tmp_path, "analyze", "--store", store, "--next", "2")
    assert ran.returncode == 0, ran.log
    assert "next variants to run" in ran.stdout
    assert re.search(r"…\(2000\s+chars\)", ran.stdout)
    assert "a" * 100 not in ran.stdout and "b" * 100 not in ran.stdout
