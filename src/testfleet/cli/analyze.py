"""``testfleet analyze`` and ``testfleet flaky``: why runs failed, from the store.

analyze: parameter impact (with false-discovery control), interactions and rules, sensitivity of
durations, failure clusters, flaky tests, and with ``--next`` the follow-up variants worth
running, and with ``--confirm`` those follow-ups run on the fleet as randomised experiments
(:mod:`testfleet.analysis.confirm`). Terminal tables always; ``--json``, ``--md``, ``--html``
(plotly) on request. Exit 0 (the analysis is information), 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError
from testfleet.model import FAILURE_OUTCOMES
from testfleet.reporting.analysis_report import picture_subjects, to_json
from testfleet.reporting.consoles import make_console

BAD_INPUT = 2
_FAILED = frozenset(str(o) for o in FAILURE_OUTCOMES)


def gather(store: str | None, ref: str, runs: int, fdr: float, want_next: int, seed: int,
           confirm: int = 0) -> dict[str, Any]:
    from testfleet.analysis.correlation import analyze, next_variants
    from testfleet.analysis.dataset import (
        choose_runs,
        explained_by_replays,
        load_frame,
        load_rows,
        replication_verdicts,
    )
    from testfleet.analysis.failures import cluster_failures
    from testfleet.analysis.flaky import flaky_tests
    from testfleet.cli.history import _open

    with _open(store) as db:
        chosen = choose_runs(db, ref, runs)
        frame = load_frame(db, chosen)
        rows = load_rows(db, chosen)
        replicated = replication_verdicts(db, chosen)
        path = Path(db.path).resolve()   # confirming runs start in the run's rootdir
    analysis = analyze(frame, fdr=fdr, seed=seed)
    count = max(want_next, confirm)
    proposals = next_variants(frame, analysis, count=count, seed=seed) if count else []
    confirmed = _confirm(path, chosen[0], rows, proposals[:confirm], seed) if confirm else []
    explained = explained_by_replays(replicated)
    return {"runs": [r.run_id for r in chosen], "frame": frame, "analysis": analysis,
            "clusters": cluster_failures(rows),
            "flaky": [f for f in flaky_tests(rows) if f.variant_id not in explained],
            "next": proposals, "next_asked": bool(count), "confirmed": confirmed, "replication": replicated}


def _confirm(path: Path, run: Any, rows: list[dict[str, Any]], proposals: list[Any], seed: int
             ) -> list[Any]:
    """Run the proposals as experiments in the analysed run's root directory, with its seed."""
    from testfleet.analysis.confirm import confirm, fleet_runner

    nodeid = {r["variant_id"]: r["nodeid"] for r in rows}
    failed_before: dict[str, bool] = {}
    for r in rows:
        if r["final"]:
            failed_before[r["variant_id"]] = r["outcome"] in _FAILED
    plans = [(p, nodeid[p.based_on], failed_before.get(p.based_on, False))
             for p in proposals if p.based_on in nodeid]
    rootdir = Path(run.rootdir) if run.rootdir and Path(run.rootdir).is_dir() else Path.cwd()
    return confirm(plans, fleet_runner(path, rootdir, run.seed, _new_results), seed=seed)


def _new_results(path: Path, seen: set[str]) -> tuple[set[str], list[tuple[dict[str, Any], bool]]]:
    """Run ids in the store now, and (params, failed) of the final results of runs not in
    ``seen``."""
    from testfleet.store.db import Store

    with Store.open(path, read_only=True) as db:
        now = {row[0] for row in db.query("SELECT run_id FROM runs")}
        fresh = sorted(now - seen)
        rows = db.query(
            "SELECT v.params::VARCHAR, r.outcome FROM results r JOIN variants v USING (variant_id) "
            "WHERE r.final AND r.run_id IN (SELECT unnest($1::VARCHAR[]))", [fresh]) if fresh else []
    return now, [(json.loads(params) if params else {}, outcome in _FAILED)
                 for params, outcome in rows]


def analyze_command(ref: str, runs: int, fdr: float, want_next: int, json_out: str | None,
                    md: str | None, html: str | None, store: str | None, seed: int,
                    confirm: int = 0) -> int:
    from testfleet.atomic import check_outputs

    try:
        check_outputs(("--json", json_out), ("--md", md), ("--html", html))
        found = gather(store, ref, runs, fdr, want_next, seed, confirm)
        data = to_json(found)
        if json_out:
            from testfleet.atomic import atomic_write_text
            atomic_write_text(json_out, json.dumps(data, indent=2, default=str) + "\n")
        if md:
            from testfleet.atomic import atomic_write_text
            from testfleet.reporting.analysis_report import to_markdown
            atomic_write_text(md, to_markdown(data))
        if html:
            from testfleet.reporting.analysis_plot import (
                analysis_figures,
                write_analysis_html,
            )
            params, pairs = picture_subjects(data)
            write_analysis_html(analysis_figures(found["frame"], params, pairs), Path(html))
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    from testfleet.reporting.analysis_report import print_analysis

    print_analysis(make_console(), data)
    return 0


def flaky_command(ref: str, runs: int, json_out: str | None, store: str | None) -> int:
    from testfleet.analysis.dataset import choose_runs, load_rows
    from testfleet.analysis.flaky import flaky_tests
    from testfleet.cli.history import _open

    from testfleet.atomic import check_outputs

    try:
        check_outputs(("--json", json_out))
        with _open(store) as db:
            chosen = choose_runs(db, ref, runs)
            found = flaky_tests(load_rows(db, chosen))
        if json_out:
            from testfleet.atomic import atomic_write_text
            atomic_write_text(json_out, json.dumps({"runs": [r.run_id for r in chosen],
                                                    "flaky": [f.to_dict() for f in found]},
                                                   indent=2, default=str) + "\n")
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    console = make_console()
    if not found:
        console.print(f"no flaky tests in the last {len(chosen)} run(s)")
        return 0
    table = Table("test", "flakiness", "95% CI", "failed/ran", "evidence", box=None,
                  header_style="bold")
    for f in found:
        table.add_row(escape(f.nodeid), f"{f.score:.0%}", f"{f.low:.0%}–{f.high:.0%}",
                      f"{f.failures}/{f.executions}", escape(f.evidence))
    console.print(table)
    console.print(f"{len(found)} flaky test(s) in the last {len(chosen)} run(s)")
    return 0
