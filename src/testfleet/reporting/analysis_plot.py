"""Pictures of a failure analysis (plotly): failure rate by parameter value, and a heatmap of the
failure rate over the value pairs of two parameters. Numeric parameters are shown by quantile
bins. Written as one self-contained HTML page (plotly.js inline), like the coverage page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from testfleet.analysis.frame import CATEGORICAL, AnalysisFrame, Column

BINS = 5


def _codes(column: Column) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 missing) and a label per code; numeric columns by quantile bins."""
    if column.kind == CATEGORICAL:
        return column.values, [str(v) for v in column.labels or []]
    values = column.values
    present = values[~np.isnan(values)]
    if not len(present):
        return np.full(len(values), -1), []
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))
    if len(edges) < 2:
        edges = np.array([present.min(), present.max()])
    codes = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
    codes = np.where(np.isnan(values), -1, codes)
    labels = [f"{edges[0]:g}..{edges[1]:g}"] + [f"{edges[i]:g}<..{edges[i + 1]:g}"
                                                 for i in range(1, len(edges) - 1)]
    return codes.astype(np.int64), labels


def failure_rate_figure(frame: AnalysisFrame, name: str) -> Any:
    import plotly.graph_objects as go

    codes, labels = _codes(frame.column(name))
    ok = codes >= 0
    runs = np.bincount(codes[ok], minlength=len(labels))
    fails = np.bincount(codes[ok & frame.failed], minlength=len(labels))
    rate = np.divide(fails, runs, out=np.zeros(len(labels)), where=runs > 0)
    figure = go.Figure(go.Bar(x=labels, y=rate, text=[f"{f}/{r}" for f, r in zip(fails, runs,
                                                                                 strict=True)],
                              hovertemplate="%{x}: %{y:.1%} failed (%{text})<extra></extra>",
                              marker_color="#c0392b"))
    figure.update_layout(title=f"Failure rate by {name}", yaxis_tickformat=".0%",
                         xaxis_title=name, yaxis_title="failed", template="plotly_white")
    return figure


def interaction_figure(frame: AnalysisFrame, a: str, b: str) -> Any:
    import plotly.graph_objects as go

    ca, la = _codes(frame.column(a))
    cb, lb = _codes(frame.column(b))
    ok = (ca >= 0) & (cb >= 0)
    cells = len(la) * len(lb)
    code = ca[ok] * len(lb) + cb[ok]
    runs = np.bincount(code, minlength=cells).reshape(len(la), len(lb))
    fails = np.bincount(code[frame.failed[ok]], minlength=cells).reshape(len(la), len(lb))
    rate = np.where(runs > 0, fails / np.maximum(runs, 1), np.nan)
    text = [[f"{fails[i, j]}/{runs[i, j]}" if runs[i, j] else "never run" for j in range(len(lb))]
            for i in range(len(la))]
    figure = go.Figure(go.Heatmap(z=rate, x=lb, y=la, text=text, texttemplate="%{text}",
                                  colorscale="Reds", zmin=0, zmax=1,
                                  colorbar={"title": "failed", "tickformat": ".0%"}))
    figure.update_layout(title=f"Failure rate by {a} × {b}", xaxis_title=b, yaxis_title=a,
                         template="plotly_white")
    return figure


def analysis_figures(frame: AnalysisFrame, parameters: Sequence[str],
                     pairs: Sequence[tuple[str, str]]) -> list[Any]:
    return [failure_rate_figure(frame, p) for p in parameters] + \
        [interaction_figure(frame, a, b) for a, b in pairs]


def write_analysis_html(figures: Sequence[Any], path: str | Path) -> None:
    from testfleet.reporting.coverage_plot import write_html

    write_html(figures, path, title="testfleet failure analysis")
