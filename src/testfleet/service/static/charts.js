// testfleet dashboard: the per-worker telemetry charts (plotly.js), fed by `series` events.
"use strict";

const CHART_EVERY_MS = 2000;  // a redraw costs tens of milliseconds: new points go on this often
const CHART_POINTS = 3000;  // the newest points a chart keeps (the state keeps them all)
let chartsOnScreen = true;  // charts off screen take no points; they are drawn afresh on coming back

function plotlyReady() { return typeof window.Plotly !== "undefined"; }

function renderMetricChoices(st) {
  const metrics = [...st.telemetry.keys()].sort();
  const select = $("metric");
  if (shownMetric === null || !st.telemetry.has(shownMetric)) {
    shownMetric = metrics.find((m) => /cpu/i.test(m)) || metrics[0] || null;
    st.dirty.add("charts");
  }
  select.replaceChildren(...metrics.map((m) => el("option", {value: m, text: m})));
  if (shownMetric !== null) select.value = shownMetric;
  $("telemetry-note").hidden = metrics.length > 0;
}

function chartId(worker) { return "chart-" + worker.replace(/[^A-Za-z0-9_-]/g, "_"); }

function chartLayout(worker) {
  return {title: {text: `worker ${worker}`, font: {size: 13}}, margin: {l: 50, r: 10, t: 30, b: 30},
    xaxis: {title: {text: "s"}}, yaxis: {title: {text: shownMetric || ""}}, showlegend: false};
}

// A full redraw when the set of charts or the metric changed; otherwise only the new points,
// appended with Plotly.extendTraces once per animation frame.
function renderCharts(st) {
  if (shownMetric === null) return;
  if (!plotlyReady()) { $("telemetry-note").hidden = false; $("telemetry-note").textContent = "charts not available (plotly.js did not load)"; return; }
  const lines = st.telemetry.get(shownMetric) || new Map();
  const box = $("charts");
  if (st.dirty.has("charts")) {
    st.pending.clear();
    box.replaceChildren();
    for (const [worker, line] of [...lines.entries()].sort()) {
      const div = el("div", {class: "chart", id: chartId(worker), "data-testid": `chart-${worker}`});
      box.append(div);
      Plotly.newPlot(div, [{x: line.x.slice(-CHART_POINTS), y: line.y.slice(-CHART_POINTS), mode: "lines", name: worker}],
        chartLayout(worker), {displaylogo: false, responsive: true});
    }
    return;
  }
  for (const [worker, p] of st.pending) {
    const div = $(chartId(worker));
    if (div && p.x.length) Plotly.extendTraces(div, {x: [p.x], y: [p.y]}, [0], CHART_POINTS);
  }
  st.pending.clear();
}
