"""A finished exploring run's coverage comes from the space its tests declared, as the run
recorded it: the project need not be there any more (a submitted run's is removed)."""

from __future__ import annotations

import shutil
from pathlib import Path

from execution.conftest import make_suite, run_testfleet
from fastapi.testclient import TestClient

from testfleet.service.app import create_app
from testfleet.service.hub import EventHub
from testfleet.service.state import ServiceState
from testfleet.store.db import Store

SUITE = {"tests/test_x.py": """
    import testfleet
    from testfleet import Choice, Int


    @testfleet.explore(size=Int(0, 300, step=100), mode=Choice(["a", "b", "c"]))
    def test_x(size, mode):
        assert not (size == 300 and mode == "c"), "too big in c"
    """}


def test_coverage_of_a_finished_run_is_measured_against_its_recorded_spaces(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", SUITE)
    store_path = tmp_path / "s.duckdb"
    ran = run_testfleet(project, "tests", "--explore", "12", "--seed", "3", store=store_path)
    assert ran.returncode == 1, ran.log
    shutil.rmtree(project)  # as after a submitted run
    with Store.open(store_path) as store:
        app = create_app(ServiceState(store=store, hub=EventHub(), workdir=tmp_path / "work"))
        answer = TestClient(app).get("/runs/last/coverage")
    assert answer.status_code == 200, answer.text
    (case,) = answer.json()["cases"]
    assert case["nodeid"].startswith("tests/test_x.py::test_x")
    coverage = case["coverage"]
    assert coverage["names"] == ["size", "mode"]
    matrix = coverage["matrix"]
    assert len(matrix) == 2 and all(0 < v <= 1 for row in matrix for v in row)
    # 13 executions (baseline + 12) of a 4 x 3 space: every single value was tried
    assert matrix[0][0] == 1.0 and matrix[1][1] == 1.0
