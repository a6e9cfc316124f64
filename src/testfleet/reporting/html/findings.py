"""What the run found beyond pass and fail: exploration, telemetry, coverage and the analysis.

The words are those of the console and ``testfleet analyze`` (``reporting.exploration``,
``reporting.analysis_report``); the pictures are theirs too (``telemetry_plot``,
``coverage_plot``, ``analysis_plot``), placed through :class:`~.charts.Charts`.
"""

from __future__ import annotations

from typing import Any

from testfleet.analysis.display import abbreviate, abbreviate_params
from testfleet.reporting.analysis_report import design_line, impact_rows, interaction_rows
from testfleet.reporting.exploration import ab_lines, rule_lines
from testfleet.reporting.html.charts import Charts
from testfleet.reporting.html.gather import ANOMALIES_SHOWN, ReportData
from testfleet.reporting.html.text import esc
from testfleet.reporting.variant_names import params_label

__all__ = ["analysis_section", "coverage_section", "exploration_section", "telemetry_section"]


def _p(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _list(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>" if lines else ""


def exploration_section(data: ReportData) -> str:
    found = data.exploration
    if not found:
        return ('<section id="exploration"><h2>Exploration</h2><p class="muted">This run did not '
                "explore (<code>--explore</code>).</p></section>")
    parts = ['<section id="exploration"><h2>Exploration</h2>',
             f"<p>{found['executions']:,} explored executions of {found['cases']} case"
             f"{'s' if found['cases'] != 1 else ''}; {found['failing']:,} failed.</p>"]
    if found["by_origin"]:
        rows = "".join(f"<tr><td>{esc(origin)}</td><td class=\"num\">{c['executions']}</td>"
                       f"<td class=\"num\">{c['failures']}</td><td class=\"num\">"
                       f"{c['failures'] / c['executions']:.0%}</td></tr>"
                       for origin, c in found["by_origin"].items() if c["executions"])
        parts.append('<table><tr><th>source</th><th class="num">executions</th>'
                     f'<th class="num">failures</th><th class="num">yield</th></tr>{rows}</table>')
    parts.append(_list(rule_lines(found["rules"])))
    if found.get("ab"):
        parts.append(_list(ab_lines(found["ab"])))
    minimized = found["minimized"]
    if minimized:
        rows = "".join(
            f"<tr><td><code>{esc(m.get('nodeid') or '')}</code></td><td>{esc(m.get('message', ''))}</td>"
            f"<td><code>{esc(params_label(m.get('minimal_params') or {}))}</code></td>"
            f"<td class=\"num\">{esc(m.get('executions', 0))}</td>"
            f"<td><code>{esc(m.get('variant_id') or '')}</code></td></tr>" for m in minimized)
        parts.append("<h3>Minimal failing variants</h3><table><tr><th>test</th><th>minimal change"
                     "</th><th>minimal variant</th><th class=\"num\">executions</th>"
                     f"<th>found by variant</th></tr>{rows}</table>")
    return "".join(parts) + "</section>"


def telemetry_section(data: ReportData, charts: Charts) -> str:
    parts = ['<section id="telemetry"><h2>Telemetry</h2>']
    if not data.telemetry:
        parts.append('<p class="muted">No telemetry was recorded for this run '
                     "(<code>--telemetry-interval 0</code> turns it off).</p>")
    else:
        parts.append('<p class="muted">One chart per metric, a line per worker (instance); '
                     "anomalies marked ✕.</p>" + charts.place_all(data.telemetry))
    if data.anomalies:
        shown = data.anomalies[:ANOMALIES_SHOWN]
        parts.append(f"<h3>Anomalies ({len(data.anomalies)})</h3><table>" + "".join(
            f"<tr><td>{esc(str(a.get('kind', '')).upper())}</td>"
            f"<td><code>{esc(a.get('nodeid') or a.get('case_id') or '')}</code></td>"
            f"<td>{esc(a.get('message', ''))}</td></tr>" for a in shown) + "</table>")
        if len(data.anomalies) > len(shown):
            parts.append(f"<p class=\"muted\">… and {len(data.anomalies) - len(shown)} more: "
                         f"<code>testfleet telemetry {esc(data.run.run_id)}</code></p>")
    return "".join(parts) + "</section>"


def coverage_section(data: ReportData, charts: Charts) -> str:
    parts = ['<section id="coverage"><h2>Coverage</h2>']
    if not data.coverage:
        parts.append('<p class="muted">No test of this run declared a parameter space '
                     "(<code>@testfleet.explore</code>).</p>")
    for item in data.coverage:
        s = item.summary
        line = (f"{s.get('strength', 2)}-way simple coverage {s.get('simple', 0):.1%} over "
                f"{s.get('rows', 0)} executions")
        if s.get("outside"):
            line += f"; {s['outside']} with a value outside the space"
        parts.append(f"<h3><code>{esc(item.nodeid)}</code></h3><p>{esc(line)}</p>"
                     + charts.place_all(item.figures))
    return "".join(parts) + "</section>"


def _impacts(analysis: dict[str, Any]) -> str:
    rows = []
    for r in impact_rows(analysis):
        effect = "-" if r["effect"] is None else f"{r['effect_name']} {r['effect']:.2f}"
        mark = '<span class="significant">significant</span>' if r["significant"] else esc(r["note"])
        name = r["parameter"] + (" (env)" if r["source"] == "env" else "")
        rows.append(f"<tr><td><code>{esc(name)}</code></td><td>{esc(r['test'])}</td>"
                    f"<td class=\"num\">{_p(r['p'])}</td><td class=\"num\">{_p(r['q'])}</td>"
                    f"<td>{esc(effect)}</td><td>{esc(r['worst'] or '-')}</td><td>{mark}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Parameter impact</h3><table><tr><th>parameter</th><th>test</th>"
            '<th class="num">p</th><th class="num">q</th><th>effect</th>'
            "<th>highest failure rate</th><th></th></tr>" + "".join(rows) + "</table>")


def _clusters(clusters: list[dict[str, Any]]) -> str:
    if not clusters:
        return ""
    rows = "".join(f"<tr><td><code>{esc(abbreviate(str(c['exception']) + ': ' + str(c['message']), 120))}</code>"
                   f"</td><td class=\"num\">{c['count']}</td><td class=\"num\">{len(c['tests'])}</td>"
                   f"<td>{esc(c['environment'])}</td></tr>" for c in clusters[:15])
    return ("<h3>Failure clusters</h3><table><tr><th>failure</th><th class=\"num\">count</th>"
            f"<th class=\"num\">tests</th><th>where</th></tr>{rows}</table>")


def analysis_section(data: ReportData, charts: Charts) -> str:
    found = data.analysis
    parts = ['<section id="analysis"><h2>Analysis</h2>']
    if not found:
        return "".join(parts) + '<p class="muted">No analysis.</p></section>'
    analysis = found["analysis"]
    parts.append(f"<p><b>{analysis['executions']:,} executions, {analysis['failures']:,} failed</b> "
                 f"({analysis['failure_rate']:.1%}); false discovery rate {analysis['fdr']:.0%}. "
                 "The same as <code>testfleet analyze "
                 f"{esc(found['runs'][0] if found.get('runs') else '')}</code>.</p>")
    if design_line(analysis):
        parts.append(f"<p>{esc(design_line(analysis))}</p>")
    if analysis["not_enough_data"]:
        parts.append(f"<p class=\"muted\">Not enough data: {esc(analysis['not_enough_data'])}</p>")
    else:
        parts.append(_impacts(analysis))
    if analysis["rules"]:
        parts.append("<h3>Rules</h3>" + _list([rule["text"] for rule in analysis["rules"]]))
    inters = interaction_rows(analysis)
    if inters:
        parts.append(f"<h3>Interactions ({len(inters)} significant)</h3>" + _list(
            [f"{i['text']}: {i['rate']:.0%} of {i['count']} (lift {i['lift']:.1f}, q {_p(i['q'])})"
             for i in inters[:8]]))
    if analysis.get("hypotheses"):
        parts.append("<h3>Hypotheses</h3><p class=\"muted\">From guided executions, chosen near "
                     "failures: not tests; confirm with <code>testfleet analyze --confirm</code>.</p>"
                     + _list([h["text"] for h in analysis["hypotheses"]]))
    sparse = analysis.get("sparse_interactions") or []
    if sparse:
        parts.append("<h3>Too few executions to test</h3>" + _list(
            [f"{n['text']} failed {n['failures']} of {n['count']}" for n in sparse]))
    for outcome, ranked in (analysis.get("sensitivity") or {}).items():
        top = [s for s in ranked if s["significant"]][:5]
        if top:
            parts.append(f"<p><b>{esc(outcome)} depends on</b> " + esc(", ".join(
                f"{s['column']} ({s['effect_name']} {s['effect']:.2f})" for s in top)) + "</p>")
    parts.append(_clusters(found.get("clusters") or []))
    if found.get("next"):
        parts.append("<h3>Next variants to run</h3>" + _list(
            [f"{p['reason']}: {abbreviate_params(p['params'])}" for p in found["next"]]))
    if data.analysis_figures:
        parts.append(charts.place_all(data.analysis_figures))
    return "".join(parts) + "</section>"
