"""The HTML report: one self-contained file of a stored run (``--html``, ``testfleet report``).

It is read from the store (:mod:`.gather`), so ``testfleet run --html F`` at the end of a run
and ``testfleet report RUN --html F`` later write the same document. The file carries plotly.js
once and every chart's data, and opens offline with no server: summary, failures with their
tracebacks and captured output, flaky and slowest tests, telemetry charts, the exploration's
findings with minimal variants, the coverage heatmaps and the failure analysis.
"""

from __future__ import annotations

from testfleet.reporting.html.gather import ReportData, gather
from testfleet.reporting.html.page import render, write

__all__ = ["ReportData", "gather", "render", "write"]
