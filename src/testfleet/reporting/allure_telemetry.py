"""Telemetry attachments of an Allure result: a summary table (CSV) and a small SVG chart.

Allure shows a ``text/csv`` attachment as a table and an ``image/svg+xml`` one as a picture. The
chart is drawn here as plain SVG, not plotly: one attachment per test, and a self-contained plotly
page weighs megabytes where this weighs a few kilobytes. It shows what the test's worker sampled
from a little before the test started to a little after it ended, the test's own span shaded,
one small panel per metric.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

import numpy as np

__all__ = ["chart_window", "telemetry_csv", "telemetry_svg"]

PANEL_W, PANEL_H, GAP, LEFT = 420, 64, 26, 8
MAX_PANELS = 6
MAX_POINTS = 120
# The metrics a reader looks at first; the rest follow by name.
FIRST = ("worker.cpu_percent", "worker.rss_mb", "system.cpu_percent")


def telemetry_csv(summary: Mapping[str, Mapping[str, float]]) -> str:
    """One row per metric of a result's telemetry summary (mean, max, p95, delta, count)."""
    columns = sorted({key for stats in summary.values() for key in stats},
                     key=lambda k: (["mean", "max", "p95", "delta", "count"] + [k]).index(k))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", *columns])
    for metric in sorted(summary):
        writer.writerow([metric, *(_number(summary[metric].get(c)) for c in columns)])
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else format(float(value), ".6g")


def chart_window(start: float, stop: float) -> tuple[float, float]:
    """The span a test's chart shows (epoch seconds): the test, padded so that a short test still
    shows the samples around it."""
    pad = max(5.0, 2.0 * (stop - start))
    return start - pad, stop + pad


def _ordered(metrics: Sequence[str], wanted: Sequence[str]) -> list[str]:
    chosen = [m for m in FIRST if m in metrics]
    chosen += sorted(m for m in metrics if m in wanted and m not in chosen)
    chosen += sorted(m for m in metrics if m not in chosen)
    return chosen[:MAX_PANELS]


def telemetry_svg(series: Mapping[str, tuple[np.ndarray, np.ndarray]], start: float, stop: float,
                  *, title: str, wanted: Sequence[str] = ()) -> str | None:
    """An SVG of ``series`` (metric -> (t, value), one worker) around [start, stop], or None when
    fewer than two samples fall in the window. ``wanted`` metrics come before the others."""
    low, high = chart_window(start, stop)
    panels: list[tuple[str, np.ndarray, np.ndarray]] = []
    for metric in _ordered(list(series), wanted):
        t, v = series[metric]
        keep = (t >= low) & (t <= high) & np.isfinite(v)
        if int(keep.sum()) >= 2:
            t, v = t[keep], v[keep]
            stride = max(1, -(-len(t) // MAX_POINTS))
            panels.append((metric, t[::stride], v[::stride]))
    if not panels:
        return None
    # the axis spans the samples kept (and the test), not the empty part of the padded window
    low = min(start, min(float(t[0]) for _, t, _ in panels))
    high = max(stop, max(float(t[-1]) for _, t, _ in panels), low + 1e-3)
    width = LEFT * 2 + PANEL_W
    height = 24 + len(panels) * (PANEL_H + GAP)
    scale_x = PANEL_W / (high - low)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="14" font-weight="bold">{escape(title)}</text>']
    for index, (metric, t, v) in enumerate(panels):
        top = 24 + index * (PANEL_H + GAP) + 14
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo or 1.0
        xs = LEFT + (t - low) * scale_x
        ys = top + PANEL_H - 3 - (v - lo) / span * (PANEL_H - 6)  # 3 px inside the panel
        shade_x = LEFT + (start - low) * scale_x
        shade_w = max((stop - start) * scale_x, 1.0)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
        parts += [
            f'<text x="{LEFT}" y="{top - 4}">{escape(metric)} '
            f'(min {_number(lo)}, max {_number(hi)})</text>',
            f'<rect x="{LEFT}" y="{top}" width="{PANEL_W}" height="{PANEL_H}" fill="#f6f6f6"/>',
            f'<rect x="{shade_x:.1f}" y="{top}" width="{shade_w:.1f}" height="{PANEL_H}" '
            f'fill="#ffd54f" fill-opacity="0.5"><title>this test</title></rect>',
            f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1.5"/>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
