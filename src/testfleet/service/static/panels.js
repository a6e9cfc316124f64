// testfleet dashboard: the panels of an ended run (coverage, analysis, diff), from the REST API.
"use strict";

// Render any JSON answer readably: lists of objects as tables, objects as term/definition
// lists, long text folded. The REST answers' shapes may grow; the page shows what comes.
function renderValue(value, depth = 0) {
  if (value === null || value === undefined) return el("span", {class: "muted", text: "–"});
  if (Array.isArray(value)) {
    if (!value.length) return el("span", {class: "muted", text: "none"});
    if (value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const keys = [...new Set(value.flatMap((v) => Object.keys(v)))];
      const rows = value.slice(0, 100).map((v) => el("tr", {}, ...keys.map((k) => el("td", {}, renderValue(v[k], depth + 1)))));
      const table = el("table", {class: "grid"}, el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", {text: k})))), el("tbody", {}, ...rows));
      return value.length > 100 ? el("div", {}, table, el("p", {class: "muted", text: `${value.length - 100} more`})) : table;
    }
    return el("span", {class: "mono", text: value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ")});
  }
  if (typeof value === "object") {
    if (depth > 3) return el("span", {class: "mono", text: JSON.stringify(value)});
    const dl = el("dl", {class: "value"});
    for (const [k, v] of Object.entries(value)) dl.append(el("dt", {text: k}), el("dd", {}, renderValue(v, depth + 1)));
    return dl;
  }
  const text = fmtValue(value);
  if (text.includes("\n") || text.length > 200) {
    return el("details", {class: "value"}, el("summary", {text: text.split("\n", 1)[0].slice(0, 120)}), el("pre", {text}));
  }
  return el("span", {text});
}

function fmtValue(value) {
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(4)));
  return String(value);
}

// The first {names, matrix} (or {x, y, z}) in a coverage answer, drawn as a heatmap.
function findHeatmap(value, depth = 0) {
  if (!value || typeof value !== "object" || depth > 4) return null;
  if (Array.isArray(value.matrix) && Array.isArray(value.names)) return {x: value.names, y: value.names, z: value.matrix};
  if (Array.isArray(value.z)) return {x: value.x, y: value.y, z: value.z};
  for (const v of Object.values(value)) {
    const found = findHeatmap(v, depth + 1);
    if (found) return found;
  }
  return null;
}

function showAnswer(box, answer, draw) {
  if (!answer.ok) { box.replaceChildren(el("p", {class: "muted", text: answer.message})); return; }
  box.replaceChildren();
  draw(box, answer.data);
}

async function loadFinishedPanels(st) {
  const [coverage, analysis] = await Promise.all([
    api(`/runs/${encodeURIComponent(st.runId)}/coverage`),
    api(`/runs/${encodeURIComponent(st.runId)}/analysis`)]);
  if (view !== st) return;  // another run was picked meanwhile
  if (coverage.ok && Array.isArray(coverage.data.by_origin) && !st.origins.size) {
    for (const o of coverage.data.by_origin) st.origins.set(o.origin, {ran: o.executions, failed: o.failures});
    drawn.delete("exploration");
    scheduleRender();
  }
  showAnswer($("coverage"), coverage, (box, data) => {
    const heat = findHeatmap(data);
    if (heat && plotlyReady()) {
      const div = el("div", {class: "chart", "data-testid": "coverage-heatmap"});
      box.append(div);
      Plotly.newPlot(div, [{type: "heatmap", x: heat.x, y: heat.y, z: heat.z, colorscale: "Blues", zmin: 0, zmax: 1}],
        {margin: {l: 100, r: 10, t: 10, b: 80}}, {displaylogo: false, responsive: true});
    }
    box.append(renderValue(heat ? summaryOnly(data) : data));
  });
  showAnswer($("analysis"), analysis, (box, data) => {
    const clusters = data && (data.clusters || data.failure_clusters);
    if (Array.isArray(clusters)) {
      box.append(el("h4", {text: `Failure clusters (${clusters.length})`}), renderValue(clusters));
      const rest = {...data};
      delete rest.clusters; delete rest.failure_clusters;
      // the full analysis is long: folded, with its summary figures on the fold
      const facts = data.analysis || {};
      const summary = ["executions", "failures", "failure_rate"].filter((k) => k in facts)
        .map((k) => `${k.replace("_", " ")} ${fmtValue(facts[k])}`).join(" · ");
      box.append(el("details", {class: "value"}, el("summary", {text: `Analysis${summary ? ": " + summary : ""}`}),
        renderValue(rest)));
    } else {
      box.append(renderValue(data));
    }
  });
}

function summaryOnly(data) {
  // the heatmap already shows the matrices: list the rest
  return JSON.parse(JSON.stringify(data, (k, v) => (k === "matrix" || k === "z" ? undefined : v)));
}

function renderDiffChoices() {
  const select = $("diff-base");
  if (!view) return;
  const others = [...runs.values()].filter((r) => r.id !== view.runId).sort((a, b) => (b.t || 0) - (a.t || 0));
  const keep = select.value;
  const labels = others.map((r) => `${r.id} (${r.status})`);
  if (select.options.length === labels.length && [...select.options].every((o, i) => o.text === labels[i])) return;
  select.replaceChildren(...others.map((r, i) => el("option", {value: r.id, text: labels[i]})));
  if (others.some((r) => r.id === keep)) select.value = keep;
}

async function showDiff() {
  if (!view) return;
  const base = $("diff-base").value;
  const box = $("diff");
  if (!base) { box.replaceChildren(el("p", {class: "muted", text: "no earlier run to compare with"})); return; }
  box.replaceChildren(el("p", {class: "muted", text: "comparing…"}));
  const answer = await api(`/runs/${encodeURIComponent(view.runId)}/diff?base=${encodeURIComponent(base)}`);
  showAnswer(box, answer, (b, data) => b.append(renderValue(data)));
}
