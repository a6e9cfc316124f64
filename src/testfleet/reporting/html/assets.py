"""The page's own style and script (small, inline: the file must open with no server)."""

from __future__ import annotations

STYLE = """
:root{--fail:#b3261e;--pass:#1e7b34;--flaky:#a06000;--muted:#666;--line:#ddd}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 2em 3em;color:#222;
 max-width:1400px}
header{border-bottom:2px solid var(--line);margin-bottom:1em}
h1{font-size:1.5em;margin:.8em 0 .2em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid var(--line)}
h3{font-size:1.05em}
nav a{margin-right:1em}
.verdict-failed,.outcome-failed,.outcome-error,.outcome-timeout,.outcome-crashed{color:var(--fail)}
.verdict-passed,.outcome-passed{color:var(--pass)}
.outcome-flaky{color:var(--flaky)}
.summary-line{font-weight:bold;font-size:1.1em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border-bottom:1px solid var(--line);padding:.2em .7em;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.88em}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:40em;white-space:pre-wrap;
 word-break:break-all}
details{margin:.3em 0}
details.failure{border-left:3px solid var(--fail);padding-left:.6em}
details.failure>summary{cursor:pointer}
.cut{display:block;color:var(--muted);font-style:italic;background:#fff3cd;margin:.3em 0}
.muted{color:var(--muted)}
.chart{min-height:320px;margin:1em 0}
.significant{color:var(--fail);font-weight:bold}
"""

BOOT = """
(function () {
  var block = document.getElementById("tf-figures");
  if (!block || typeof Plotly === "undefined") { return; }
  var spec = JSON.parse(block.textContent);
  spec.figures.forEach(function (figure) {
    var layout = figure.layout || {};
    if (figure.template !== null) { layout.template = spec.templates[figure.template]; }
    Plotly.newPlot(figure.id, figure.data, layout, {responsive: true, displaylogo: false});
  });
})();
"""
