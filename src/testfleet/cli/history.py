"""``testfleet runs`` and ``testfleet show``: read the store, never write it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError
from testfleet.model import FAILURE_OUTCOMES
from testfleet.reporting.summary import summary_line
from testfleet.reporting.variant_names import variant_name
from testfleet.settings import load_settings
from testfleet.store.db import Store
from testfleet.reporting.consoles import make_console

BAD_INPUT = 2


def _open(store: str | None, *, read_only: bool = True) -> Store:
    """The store named by ``--store``, else by the settings of the current directory."""
    settings, _ = load_settings([], {"store": store} if store else {}, cwd=Path.cwd())
    return Store.open(settings.store, read_only=read_only)


def list_runs(limit: int, store: str | None) -> int:
    console = make_console()
    try:
        with _open(store) as db:
            runs = db.list_runs(limit)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    table = Table("run", "started", "workers", "result", "exit", box=None, header_style="bold")
    for run in runs:
        table.add_row(run.run_id, f"{run.started_at:%Y-%m-%d %H:%M:%S}", str(run.workers),
                      escape(summary_line(run.counts, run.duration, run.flaky)), str(run.exit_code))
    console.print(table if runs else "no runs in the store yet")
    return 0


def _explored_variants(db: Store, run_id: str) -> dict[str, tuple[str, dict]]:
    """Origin and parameters of the run's variants that are not a test's baseline."""
    rows = db.query("SELECT DISTINCT v.variant_id, v.origin, v.params::VARCHAR FROM results r "
                    "JOIN variants v USING (variant_id) WHERE r.run_id = $1 AND v.origin <> 'baseline'",
                    [run_id])
    return {variant_id: (origin, json.loads(params) if params else {}) for variant_id, origin, params in rows}


def show_run(ref: str, store: str | None, *, events: bool = False, kinds: Sequence[str] = ()) -> int:
    """One run: its summary, failures and flaky tests; with ``events`` (or ``kinds``), the timeline
    of its collaboration events instead (``kinds``: only events of those kinds)."""
    if events or kinds:
        return show_timeline(ref, store, kinds)
    console = make_console()
    try:
        with _open(store) as db:
            run = db.get_run(ref)
            results = db.results(run.run_id)
            variants = _explored_variants(db, run.run_id)
            from testfleet.store.telemetry import TelemetryStore

            ab_events = TelemetryStore(db).events(run.run_id, kinds=("ab",))
            replicated = TelemetryStore(db).events(run.run_id, kinds=("replication",))
            from testfleet.execution.probes.report import artefact_lines

            helper_lines = artefact_lines(db, run.run_id)  # helpers attached on anomalies, their artefacts
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    final = [r for r in results if r.final]
    console.print(f"[bold]run {run.run_id}[/bold]  {run.status.value}  exit {run.exit_code}")
    console.print(f"started {run.started_at:%Y-%m-%d %H:%M:%S} · {run.duration:.2f}s · {run.workers} workers "
                  f"({run.backend}) · seed {run.seed}" + (f" · git {run.git_sha[:10]}" if run.git_sha else ""))
    console.print(f"command: {escape(' '.join(run.argv))}")
    console.print(escape(summary_line(run.counts, run.duration, run.flaky)))
    for event in ab_events:  # an A/B comparison of two rulesets: its verdict
        from testfleet.reporting.exploration import ab_lines

        for line in ab_lines(event):
            console.print(escape(line))
    from testfleet.execution.replication import verdict_lines

    for line in verdict_lines(replicated):  # each failure replayed, and its class
        console.print(escape(line), highlight=False)
    for line in helper_lines:
        console.print(escape(line), highlight=False)
    failures = [r for r in final if r.outcome in FAILURE_OUTCOMES]
    if failures:
        console.print("\n[bold red]failures[/bold red]")
        for r in failures:
            message = r.message.strip().splitlines()[0] if r.message.strip() else ""
            origin, params = variants.get(r.variant_id, ("baseline", {}))
            name = variant_name(r.nodeid, params, origin) if r.variant_id in variants else r.nodeid
            console.print(f"  {r.outcome.value.upper():8} {escape(name)}" + (f" - {escape(message)}" if message else "")
                          + f"  [dim]({r.worker}, attempt {r.attempt})[/dim]")
    flaky = [r for r in final if r.flaky]
    if flaky:
        console.print("\n[bold yellow]flaky[/bold yellow]")
        for r in flaky:
            console.print(f"  {escape(r.nodeid)}  passed on attempt {r.attempt}")
    return 0


def show_timeline(ref: str, store: str | None, kinds: Sequence[str] = ()) -> int:
    """``testfleet show RUN --events``: the run's collaboration events, one a line, in order."""
    from testfleet.reporting.timeline import timeline, timeline_lines
    from testfleet.store.telemetry import TelemetryStore

    console = make_console()
    try:
        with _open(store) as db:
            run = db.get_run(ref)
            rows = TelemetryStore(db).events(run.run_id, kinds=list(kinds) or None)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    entries = timeline(rows, run.started_at.timestamp(), kinds or None)
    console.print(f"[bold]run {run.run_id}[/bold]  {run.status.value}  exit {run.exit_code}  "
                  f"started {run.started_at:%Y-%m-%d %H:%M:%S}")
    if not entries:
        console.print("no " + (f"{'/'.join(kinds)} events" if kinds else "collaboration events") + " in this run")
    for line in timeline_lines(entries):
        console.print(escape(line), highlight=False, soft_wrap=True)
    return 0
