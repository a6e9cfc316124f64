"""Telemetry charts: one plotly figure per metric, a line per worker, anomalies marked.

Series come from :meth:`testfleet.store.telemetry.TelemetryStore.series` (already downsampled in
DuckDB); times are shown in seconds since the run's first sample. Anomalies are drawn as markers
on the chart of their metric at the time they were detected, with the message as hover text.
HTML and PNG go through :mod:`testfleet.reporting.coverage_plot`'s writers (one self-contained
page; PNG through kaleido and a local Chromium).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from testfleet.reporting.coverage_plot import _go

__all__ = ["telemetry_figures"]


def telemetry_figures(series: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                      anomalies: Sequence[dict[str, Any]] = (), *, title: str = "") -> list[Any]:
    go = _go()
    if not series:
        return []
    origin = min(float(t[0]) for t, _ in series.values() if len(t))
    metrics = sorted({metric for metric, _ in series})
    figures = []
    for metric in metrics:
        fig = go.Figure()
        for (name, worker), (t, v) in sorted(series.items()):
            if name != metric:
                continue
            fig.add_trace(go.Scatter(x=t - origin, y=v, mode="lines", name=worker or "run"))
        marks = [a for a in anomalies if a.get("metric") == metric and a.get("t") is not None]
        if marks:
            fig.add_trace(go.Scatter(
                x=[float(a["t"]) - origin for a in marks], y=[a.get("value") for a in marks],
                mode="markers", name="anomaly", marker={"symbol": "x", "size": 11, "color": "red"},
                text=[f"{a.get('nodeid', '')}: {a.get('message', '')}" for a in marks],
                hoverinfo="text"))
        fig.update_layout(title=f"{metric}{f' — {title}' if title else ''}",
                          xaxis_title="seconds since the run's first sample", yaxis_title=metric,
                          height=320, margin={"t": 50, "b": 40, "l": 60, "r": 20})
        figures.append(fig)
    return figures
