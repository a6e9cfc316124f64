"""Test data written through the store API into a real DuckDB file: one run per call, each
execution a (case, params, worker, failed, origin) tuple."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testfleet.model import Case, Outcome, Result, Run, Variant
from testfleet.store.db import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def store_run(path: Path, run_id: str, executions: Iterable[tuple[str, dict[str, Any], str, bool, str]],
              *, minute: int = 0, message: str = "AssertionError: boom") -> None:
    """Store one finished run of ``executions`` (nodeid, params, worker, failed, origin)."""
    started = T0 + timedelta(minutes=minute)
    rows = list(executions)
    cases = {nodeid: Case.from_nodeid(nodeid) for nodeid, *_ in rows}
    variants = [Variant.of(cases[nodeid], params, origin=origin)
                for nodeid, params, _, _, origin in rows]
    with Store.open(path) as db:
        run = Run(run_id=run_id, started_at=started, workers=2, seed=0, settings={})
        db.begin_run(run)
        db.add_cases(list(cases.values()), run_id=run_id)
        db.add_variants(variants)
        db.append_results([
            Result(run_id=run_id, variant_id=v.variant_id, case_id=v.case_id, nodeid=nodeid,
                   worker=worker, outcome=Outcome.failed if failed else Outcome.passed,
                   message=message if failed else "", duration=0.01, started_at=started,
                   finished_at=started + timedelta(seconds=k))
            for k, (v, (nodeid, _, worker, failed, _)) in enumerate(zip(variants, rows))])
        failures = sum(1 for r in rows if r[3])
        db.finish_run(run.model_copy(update={
            "finished_at": started + timedelta(seconds=len(rows)), "exit_code": int(failures > 0),
            "counts": {"passed": len(rows) - failures, "failed": failures}}))
