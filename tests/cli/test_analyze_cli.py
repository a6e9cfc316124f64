"""``testfleet analyze`` and ``testfleet flaky`` on real runs: the planted cause of a
parametrized suite's failures is found, clusters and flaky tests are listed, and every output
format is written."""

from __future__ import annotations

import json
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
