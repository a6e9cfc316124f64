"""``space coverage --run``: a run's ``sut.<name>`` parameters count against a config space
that names them ``<name>``, and a run sharing no name with the space is an error, not 0%."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from execution.conftest import run_cli

from testfleet.model import Case, Outcome, Result, Run, Variant
from testfleet.store.db import Store


def _store(path: Path, prefix: str) -> Path:
    case = Case.from_nodeid("tests/test_x.py::test_x")
    variants = [Variant.of(case, {f"{prefix}a": a, f"{prefix}b": b, f"{prefix}c": 0},
                           origin="explore") for a in (0, 1) for b in (0, 1)]
    now = datetime.now(UTC)
    with Store.open(path) as db:
        run = Run(run_id="r1", started_at=now, workers=1, seed=0, settings={})
        db.begin_run(run)
        db.add_cases([case], run_id="r1")
        db.add_variants(variants)
        db.append_results([
            Result(run_id="r1", variant_id=v.variant_id, case_id=case.case_id,
                   nodeid=case.nodeid, worker="w0", outcome=Outcome.passed, duration=0.1,
                   started_at=now, finished_at=now) for v in variants])
        db.finish_run(run.model_copy(update={"finished_at": now, "exit_code": 0,
                                             "counts": {"passed": 4}}))
    return path


def _space(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("dimensions:\n  a: [0, 1]\n  b: [0, 1]\n  c: [0, 1]\n")


def test_sut_prefixed_run_parameters_count_against_the_config_space(tmp_path: Path) -> None:
    _space(tmp_path)
    store = _store(tmp_path / "s.duckdb", "sut.")
    ran = run_cli(tmp_path, "space", "coverage", "space.yaml", "--run", "last", "--store",
                  store, "--json", "cov.json")
    assert ran.returncode == 0, ran.log
    data = json.loads((tmp_path / "cov.json").read_text())
    assert data["rows"] == 4 and data["outside"] == 0
    assert "outside the space" not in ran.stdout


def test_a_run_sharing_no_name_with_the_space_exits_2_saying_why(tmp_path: Path) -> None:
    _space(tmp_path)
    store = _store(tmp_path / "s.duckdb", "db.pool_")
    ran = run_cli(tmp_path, "space", "coverage", "space.yaml", "--run", "last", "--store",
                  store)
    assert ran.returncode == 2, ran.log
    assert "none of the parameters of run r1 (db.pool_a, db.pool_b, db.pool_c)" in ran.stderr
    assert "Traceback" not in ran.output
