"""The whole document: one HTML file with its style, plotly.js (once) and every chart's data.

Three scripts and nothing else: plotly.js, the charts as ``application/json`` (never run, only
parsed; written by :func:`text.script_json`, so no text in it can close the element), and the
few lines that draw them. The page loads nothing: no fonts, no CDN, no server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from testfleet.reporting.html.assets import BOOT, STYLE
from testfleet.reporting.html.charts import Charts, plotly_js
from testfleet.reporting.html.findings import (
    analysis_section,
    coverage_section,
    exploration_section,
    telemetry_section,
)
from testfleet.reporting.html.gather import ReportData
from testfleet.reporting.html.sections import (
    failures_section,
    flaky_section,
    slowest_section,
    summary_section,
    verdict,
)
from testfleet.reporting.html.text import esc, script_json

__all__ = ["render", "write"]

_NAV = (("summary", "Summary"), ("failures", "Failures"), ("flaky", "Flaky"),
        ("slowest", "Slowest"), ("exploration", "Exploration"), ("telemetry", "Telemetry"),
        ("coverage", "Coverage"), ("analysis", "Analysis"))


def render(data: ReportData, *, plotlyjs: Callable[[], str] = plotly_js) -> str:
    """The report of ``data`` as one HTML document. ``plotlyjs`` gives plotly.js's source (the
    tests of the page's text pass a stub: the bundle is 4.8 MB)."""
    charts = Charts()
    body = [summary_section(data), failures_section(data), flaky_section(data),
            slowest_section(data), exploration_section(data), telemetry_section(data, charts),
            coverage_section(data, charts), analysis_section(data, charts)]
    nav = "<nav>" + "".join(f'<a href="#{key}">{label}</a>' for key, label in _NAV) + "</nav>"
    scripts = ""
    if charts.figures:
        # </script> cannot occur in plotly.js's own source; checked rather than assumed
        source = plotlyjs()
        if "</script" in source.lower():
            raise ValueError("plotly.js contains '</script': it cannot be inlined")
        scripts = (f"<script>{source}</script>\n"
                   f'<script type="application/json" id="tf-figures">{script_json(charts.payload())}'
                   f"</script>\n<script>{BOOT}</script>\n")
    title = f"testfleet {data.run.run_id}: {verdict(data)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<header>{nav}</header>\n<main>\n" + "\n".join(part for part in body if part)
            + f"\n</main>\n{scripts}</body>\n</html>\n")


def write(path: str | os.PathLike[str], data: ReportData) -> Path:
    """Render ``data`` and write it to ``path`` whole or not at all."""
    from testfleet.atomic import atomic_write_text

    return atomic_write_text(path, render(data))
