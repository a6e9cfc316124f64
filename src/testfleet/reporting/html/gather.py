"""What the HTML report shows, read from the store: everything a finished run recorded.

``testfleet run --html`` and ``testfleet report RUN --html`` both come here with the run's id,
so the two write the same document. The analysis (what ``testfleet analyze`` computes) is
handed in by the caller (``cli/report.py``), which owns that command's choices.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from testfleet.model import FAILURE_OUTCOMES, Outcome, Result, Run
from testfleet.store.db import Store

__all__ = ["ReportData", "gather"]

SLOWEST = 10
TELEMETRY_POINTS = 300  # per series: a chart of a long run stays a few hundred kB
ANOMALIES_SHOWN = 50
SPACES_SHOWN = 8        # explorable cases whose coverage is drawn
PAIR_DETAILS = 2        # value-pair heatmaps per case


@dataclass
class Coverage:
    """One explorable case's recorded space and how its executions covered it."""

    nodeid: str
    summary: dict[str, Any]     # CoverageReport.to_dict(): simple, minimum, rows, outside...
    figures: list[Any]          # heatmap, completeness curve, value-pair details


@dataclass
class ReportData:
    run: Run
    results: list[Result]                               # every attempt, in finishing order
    variants: dict[str, dict[str, Any]]                 # explored variant id -> origin, params
    failures: list[Result] = field(default_factory=list)             # failing baseline tests
    explored: list[tuple[Result, int, dict[str, Any] | None]] = field(default_factory=list)
    flaky: list[dict[str, Any]] = field(default_factory=list)
    slowest: list[Result] = field(default_factory=list)
    telemetry: list[Any] = field(default_factory=list)               # plotly figures
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    exploration: dict[str, Any] | None = None
    coverage: list[Coverage] = field(default_factory=list)
    analysis: dict[str, Any] | None = None              # `testfleet analyze --json`'s document
    analysis_figures: list[Any] = field(default_factory=list)

    @property
    def final(self) -> list[Result]:
        return [r for r in self.results if r.final]


def failing(result: Result) -> bool:
    return result.outcome in FAILURE_OUTCOMES or "error" in result.categories


def gather(db: Store, run_id: str, *, analysis: dict[str, Any] | None = None,
           analysis_figures: Sequence[Any] = ()) -> ReportData:
    """The report of run ``run_id`` (an exact id) as the store has it."""
    from testfleet.reporting.exploration import explored_failures
    from testfleet.store.telemetry import TelemetryStore

    run = db.get_run(run_id)
    results = db.results(run.run_id)
    variants = _explored_variants(db, run.run_id)
    tele = TelemetryStore(db)
    minimized = tele.events(run.run_id, kinds=("minimized",))
    final = [r for r in results if r.final]
    plain, grouped = explored_failures([r for r in final if failing(r)],
                                       {"variants": variants, "minimized": minimized})
    data = ReportData(run=run, results=results, variants=variants, failures=plain,
                      explored=grouped, analysis=analysis,
                      analysis_figures=list(analysis_figures))
    data.flaky = list((analysis or {}).get("flaky") or _flaky_results(results))
    data.slowest = sorted(final, key=lambda r: r.duration, reverse=True)[:SLOWEST]
    data.anomalies = tele.events(run.run_id, kinds=("outlier", "leak"))
    data.telemetry = _telemetry(tele, run.run_id, data.anomalies)
    if variants or minimized:
        data.exploration = _exploration(db, tele, run.run_id, final, variants, minimized)
    data.coverage = _coverage(db, run.run_id)
    return data


def _explored_variants(db: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Origin and parameters of the run's variants that are not a test's baseline."""
    rows = db.query("SELECT DISTINCT v.variant_id, v.origin, v.params::VARCHAR FROM results r "
                    "JOIN variants v USING (variant_id) WHERE r.run_id = $1 "
                    "AND v.origin <> 'baseline' ORDER BY v.variant_id", [run_id])
    return {vid: {"origin": origin, "params": json.loads(params) if params else {}}
            for vid, origin, params in rows}


def _flaky_results(results: list[Result]) -> list[dict[str, Any]]:
    """Flaky tests when no analysis was given: those that passed on a rerun."""
    out = []
    for r in results:
        if r.final and r.flaky:
            tries = sum(1 for a in results if a.variant_id == r.variant_id)
            out.append({"nodeid": r.nodeid, "variant_id": r.variant_id, "score": None,
                        "failures": tries - 1, "executions": tries,
                        "evidence": f"passed on attempt {r.attempt}"})
    return out


def _telemetry(tele: Any, run_id: str, anomalies: list[dict[str, Any]]) -> list[Any]:
    series = tele.series(run_id, max_points=TELEMETRY_POINTS)
    if not series:
        return []
    from testfleet.reporting.telemetry_plot import telemetry_figures

    return telemetry_figures(series, anomalies)


def _exploration(db: Store, tele: Any, run_id: str, final: list[Result],
                 variants: dict[str, dict[str, Any]], minimized: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    """The parts of ``--explore``'s summary the store keeps: executions and failures by source,
    every rule's account, an A/B verdict, and each failure's minimal variant."""
    origin_of = {vid: v["origin"] for vid, v in variants.items()}
    by_origin: dict[str, dict[str, int]] = {}
    explored = [r for r in final if r.variant_id in origin_of and origin_of[r.variant_id] != "minimize"]
    for r in explored:
        counts = by_origin.setdefault(origin_of[r.variant_id], {"executions": 0, "failures": 0})
        counts["executions"] += 1
        counts["failures"] += int(r.outcome in FAILURE_OUTCOMES)
    rules = {str(e.get("rule")): e for e in tele.events(run_id, kinds=("rule",))}
    ab = tele.events(run_id, kinds=("ab",))
    cases = {r.case_id for r in explored}
    return {"executions": len(explored), "cases": len(cases),
            "failing": sum(1 for r in explored if r.outcome in FAILURE_OUTCOMES),
            "by_origin": dict(sorted(by_origin.items())), "rules": rules,
            "ab": ab[-1] if ab else None, "minimized": minimized,
            "passed": sum(1 for r in explored if r.outcome is Outcome.passed)}


def _coverage(db: Store, run_id: str) -> list[Coverage]:
    """Pairwise coverage of each explorable case's space, as ``testfleet space coverage`` and the
    dashboard draw it; a space this version cannot rebuild is left out."""
    from testfleet.analysis.space_coverage import case_coverage, recorded_spaces
    from testfleet.errors import TestfleetError
    from testfleet.reporting.coverage_plot import coverage_figures

    out = []
    for recorded in recorded_spaces(db, run_id)[:SPACES_SHOWN]:
        try:
            space, result = case_coverage(db, run_id, str(recorded["case_id"]), recorded["space"])
        except TestfleetError:
            continue
        summary = result.to_dict(gap_limit=0)
        figures = coverage_figures(summary, result.matrix, list(space.names),
                                   pair_details=result.pair_details(PAIR_DETAILS))
        out.append(Coverage(str(recorded.get("nodeid") or recorded["case_id"]), summary, figures))
    return out
