"""``testfleet telemetry RUN|last``: what the workers sampled during a run, and what was flagged.

Prints one row per metric (and per worker with ``--by-worker``): samples, mean, max, p95, first
and last value; then the anomalies the run recorded (outliers and probable leaks); with ``--html``
or ``--png`` it writes plotly charts, one per metric. ``--metric`` filters with a glob
(``sut.*``). Exit 0, or 2 for bad input (unknown run, no store, a chart that cannot be written).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError, UsageError
from testfleet.reporting.consoles import make_console

BAD_INPUT = 2


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def telemetry_command(ref: str, metric: str | None, by_worker: bool, html: str | None,
                      png: str | None, store: str | None) -> int:
    from testfleet.cli.history import _open
    from testfleet.store.telemetry import TelemetryStore

    from testfleet.atomic import check_outputs

    console = make_console(soft_wrap=True)
    try:
        check_outputs(("--html", html), ("--png", png))
        with _open(store) as db:
            run = db.get_run(ref)
            tele = TelemetryStore(db)
            stats = tele.stats(run.run_id, pattern=metric, by_worker=by_worker)
            anomalies = tele.events(run.run_id, kinds=("outlier", "leak"))
            series = tele.series(run.run_id, pattern=metric) if (html or png) else {}
        if not stats:
            console.print(f"run {run.run_id}: no telemetry recorded"
                          + (f" for metrics matching {metric!r}" if metric else "")
                          + " (was telemetry_interval 0?)")
        else:
            _print_stats(console, run.run_id, stats, by_worker)
        if metric:
            import fnmatch

            anomalies = [a for a in anomalies if fnmatch.fnmatchcase(a.get("metric") or "", metric)]
        _print_anomalies(console, anomalies)
        if html or png:
            _write_charts(console, run.run_id, series, anomalies, html, png)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    return 0


def _print_stats(console: Console, run_id: str, stats: list, by_worker: bool) -> None:
    table = Table(title=f"telemetry of run {run_id}", title_justify="left")
    for column in ("metric", *(["worker"] if by_worker else []), "samples", "mean", "max", "p95",
                   "first", "last"):
        if column == "metric":  # full names: they are what --metric and the charts use
            table.add_column(column, overflow="fold", min_width=24)
        else:
            table.add_column(column, justify="left" if column == "worker" else "right")
    rows = [((s.metric, s.worker) if by_worker else (s.metric,))
            + (s.samples, s.mean, s.max, s.p95, s.first, s.last) for s in stats]
    for row in rows:
        head = [escape(str(x)) for x in row[: 2 if by_worker else 1]]
        rest = row[len(head):]
        table.add_row(*head, str(rest[0]), *(_fmt(float(x)) for x in rest[1:]))
    console.print(table)


def _print_anomalies(console: Console, anomalies: list) -> None:
    if not anomalies:
        console.print("no anomalies flagged")
        return
    table = Table(title=f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}",
                  title_justify="left")
    for column in ("kind", "test", "metric", "value", "baseline", "score", "variant", "message"):
        table.add_column(column)
    for a in anomalies:
        table.add_row(a["kind"], escape(a.get("nodeid") or a.get("case_id") or ""), a.get("metric") or "",
                      _fmt(a["value"]) if a.get("value") is not None else "",
                      _fmt(a["baseline"]) if a.get("baseline") is not None else "",
                      f"{a['score']:.1f}" if a.get("score") is not None else "",
                      a.get("variant_id") or "", escape(a.get("message") or ""))
    console.print(table)


def _write_charts(console: Console, run_id: str, series: dict, anomalies: list,
                  html: str | None, png: str | None) -> None:
    from testfleet.reporting.coverage_plot import write_html, write_png
    from testfleet.reporting.telemetry_plot import telemetry_figures

    figures = telemetry_figures(series, anomalies, title=f"run {run_id}")
    if not figures:
        raise UsageError(f"run {run_id} has no telemetry to chart")
    if html:
        write_html(figures, html, title=f"testfleet telemetry — run {run_id}")
        console.print(f"wrote {html} ({len(figures)} charts)")
    if png:
        # one picture: the figures stacked as subplots would lose their own legends, so the
        # PNG holds the first figure per metric group: path, and path-<n>.png for the others
        base = Path(png)
        for index, figure in enumerate(figures):
            target = base if index == 0 else base.with_name(f"{base.stem}-{index}{base.suffix or '.png'}")
            write_png(figure, target)
        console.print(f"wrote {png}" + (f" and {len(figures) - 1} more PNG files beside it"
                                        if len(figures) > 1 else ""))
