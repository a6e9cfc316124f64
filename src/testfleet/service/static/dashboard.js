// testfleet dashboard: the runs list and one run's live view, fed by the server's event stream.
//
// Every event carries the server's sequence number (seq). The page keeps the last seq it applied
// and, when a WebSocket closes, reconnects with ?after=LAST: the server replays what came since,
// so nothing is missed, and an event at or below LAST is ignored, so nothing counts twice. A
// reload starts from after=0 and rebuilds the same state from the same events. Events only
// change the state; the DOM is redrawn at most once per animation frame.
"use strict";

window.__latencies = [];  // seconds from a result's making (event.t) to its arrival here: the bench reads it

const TOKEN = new URLSearchParams(location.search).get("token");
const TERMINAL = new Set(["finished", "interrupted", "failed"]);
const OUTCOME_ORDER = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "flaky"];
const SHOWN_FAILURES = 200;  // the first failures get a traceback each; the rest are counted

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return withToken(`${proto}//${location.host}${path}`);
}

// A REST call: {ok: true, data} or {ok: false, message}. A missing endpoint (404/405/501) or a
// server that cannot answer is "not available", never an exception on the page.
async function api(path) {
  let response;
  try {
    const headers = TOKEN ? {Authorization: "Bearer " + TOKEN} : {};
    response = await fetch(path, {headers});  // the token as a header: REST takes no ?token=
  } catch (err) {
    return {ok: false, message: "not available (server unreachable)"};
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (response.ok) return {ok: true, data: body};
  const detail = body && body.error && body.error.message ? `: ${body.error.message}` : "";
  return {ok: false, status: response.status, message: `not available (${response.status}${detail})`};
}

function fmtSeconds(s) {
  if (!isFinite(s) || s < 0) return "–";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// A WebSocket that reconnects with backoff from the last seq it delivered.
class Stream {
  constructor(path, onEvents, onState, mayGiveUp = false) {
    this.path = path; this.onEvents = onEvents; this.onState = onState; this.mayGiveUp = mayGiveUp;
    this.lastSeq = 0; this.delay = 250; this.closed = false; this.socket = null; this.timer = null;
    this.open();
  }
  open() {
    if (this.closed) return;
    this.onState("connecting");
    // batch=1: the server may send several events as one JSON array
    const socket = new WebSocket(wsUrl(`${this.path}?after=${this.lastSeq}&batch=1`));
    this.socket = socket;
    let opened = false;
    socket.onopen = () => { opened = true; this.failures = 0; this.delay = 250; this.onState("live"); };
    socket.onmessage = (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch (err) { return; }
      const events = (Array.isArray(data) ? data : [data]).filter((e) => {
        if (typeof e.seq !== "number" || e.seq <= this.lastSeq) return false;  // seen already
        this.lastSeq = e.seq;
        return true;
      });
      if (events.length) this.onEvents(events);
    };
    socket.onclose = (closing) => {
      if (this.socket !== socket || this.closed) return;
      this.failures = opened ? 0 : (this.failures || 0) + 1;
      // refused for good (no such live run: the handshake is turned down, three times running)
      if (this.mayGiveUp && ((closing.code >= 4400 && closing.code < 4500) || this.failures >= 3)) {
        this.closed = true;
        this.onState("refused", closing);
        return;
      }
      this.onState("reconnecting");
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }
}

// ---------------------------------------------------------------- the runs list

const runs = new Map();  // run_id -> {id, status, total, exitCode, t, argv}
let runsChanged = true;  // the list is redrawn only when it changed (a redraw under the pointer eats clicks)

function runOf(id) {
  if (!runs.has(id)) runs.set(id, {id, status: "queued", total: null, exitCode: null, t: 0, argv: []});
  return runs.get(id);
}

function applyListEvent(e) {
  runsChanged = true;
  const run = runOf(e.run_id);
  if (!run.t && e.t) run.t = e.t;
  if (e.kind === "run") {
    run.status = e.status || run.status;
    if (e.argv) run.argv = e.argv;
    if (e.exit_code !== undefined && e.exit_code !== null) run.exitCode = e.exit_code;
  } else if (e.kind === "collected") {
    run.total = e.total;
  } else if (e.kind === "end") {
    run.exitCode = e.exit_code;
    if (!TERMINAL.has(run.status)) run.status = "finished";
  }
}

function renderRuns() {
  if (!runsChanged) return;
  runsChanged = false;
  const list = $("runs");
  const sorted = [...runs.values()].sort((a, b) => (b.t || 0) - (a.t || 0));
  $("runs-note").hidden = sorted.length > 0;
  list.replaceChildren(...sorted.map((run) => {
    const sub = [run.status, run.total !== null ? `${run.total} tests` : null,
      run.exitCode !== null ? `exit ${run.exitCode}` : null].filter(Boolean).join(" · ");
    const link = el("a", {href: `#run=${encodeURIComponent(run.id)}`, "data-run": run.id,
      class: view && view.runId === run.id ? "selected" : ""},
    el("span", {class: "mono", text: run.id}), el("span", {class: "sub", text: sub}));
    return el("li", {}, link);
  }));
  renderDiffChoices();
}

async function loadRunHistory() {
  const answer = await api("/runs?limit=100");
  if (!answer.ok || !answer.data || !Array.isArray(answer.data.items)) return;
  for (const item of answer.data.items) {
    const id = item.run_id || item.id;
    if (!id) continue;
    const run = runOf(id);
    if (!run.t) run.t = (Date.parse(item.started_at) / 1000) || 0;  // an ISO time, or null
    if (run.status === "queued" && item.status) run.status = item.status;
    if (run.total === null && typeof item.collected === "number") run.total = item.collected;
    if (run.exitCode === null && item.exit_code !== undefined) run.exitCode = item.exit_code;
  }
  runsChanged = true;
  scheduleRender();
}

// ---------------------------------------------------------------- one run's state

function newRunState(runId) {
  return {
    runId, status: "queued", argv: [], total: null, done: 0, exitCode: null, ended: false,
    startT: null, lastResultT: null, endT: null,
    workers: new Map(),  // worker -> {state, nodeid, detail}
    counts: {}, failures: [], flaky: [], messages: [],
    origins: new Map(),  // origin -> {ran, failed}
    budget: null,
    telemetry: new Map(),  // metric -> Map(worker -> {x: [], y: []})
    telemetryT0: null, pending: new Map(),  // worker -> {x: [], y: []} of the shown metric, not yet drawn
    dirty: new Set(),
  };
}

function workerOf(st, name) {
  const key = String(name);
  if (!st.workers.has(key)) st.workers.set(key, {state: "started", nodeid: null, detail: ""});
  return st.workers.get(key);
}

function applyRunEvent(st, e) {
  if (st.startT === null && e.t && e.kind !== "series") st.startT = e.t;
  switch (e.kind) {
    case "run":
      st.status = e.status || st.status;
      if (e.argv) st.argv = e.argv;
      if (e.exit_code !== undefined && e.exit_code !== null) st.exitCode = e.exit_code;
      if (TERMINAL.has(st.status)) markEnded(st, e);
      break;
    case "collected":
      st.total = e.total;
      break;
    case "running": {
      workerOf(st, e.worker).nodeid = e.nodeid || null;
      st.dirty.add("workers");
      break;
    }
    case "result":
      window.__latencies.push(Date.now() / 1000 - e.t);
      applyResult(st, e);
      break;
    case "worker": {
      const w = workerOf(st, e.worker);
      w.state = e.state; w.detail = e.detail || "";
      if (e.state === "lost") w.nodeid = null;
      st.dirty.add("workers");
      break;
    }
    case "message":
      st.messages.push(e.text);
      st.dirty.add("workers");
      break;
    case "series":
      applySeries(st, e);
      break;
    case "exploring":
      st.budget = e.budget;
      break;
    case "end":
      st.exitCode = e.exit_code;
      if (!TERMINAL.has(st.status)) st.status = "finished";
      markEnded(st, e);
      break;
    default:
      break;  // console text and kinds this page does not know
  }
}

function markEnded(st, e) {
  if (st.ended) return;
  st.ended = true; st.endT = e.t || null;
  for (const w of st.workers.values()) w.nodeid = null;
  st.dirty.add("workers"); st.dirty.add("ended");
}

function applyResult(st, e) {
  if (typeof e.done === "number") st.done = Math.max(st.done, e.done);
  if (typeof e.total === "number") st.total = e.total;
  st.lastResultT = e.t;
  if (e.final === false) return;  // an attempt that will be retried: the final one counts
  st.counts[e.outcome] = (st.counts[e.outcome] || 0) + 1;
  if (e.flaky) {
    st.counts.flaky = (st.counts.flaky || 0) + 1;
    st.flaky.push(e);
    st.dirty.add("flaky");
  }
  if (e.outcome === "failed" || e.outcome === "error") {
    st.failures.push(e);
    st.dirty.add("failures");
  }
  if (!e.origin) return;  // a server whose events do not name the source: the store's count comes at the end
  const tally = st.origins.get(e.origin) || {ran: 0, failed: 0};
  tally.ran += 1;
  if (e.outcome === "failed" || e.outcome === "error") tally.failed += 1;
  st.origins.set(e.origin, tally);
}

function applySeries(st, e) {
  const times = e.t || [], metrics = e.metric || [], values = e.value || [];
  for (let i = 0; i < times.length; i++) {
    const worker = String(Array.isArray(e.worker) ? e.worker[i] : e.worker);  // a column, or one for all
    if (st.telemetryT0 === null) st.telemetryT0 = times[i];
    const x = times[i] - st.telemetryT0, y = values[i], metric = metrics[i];
    if (!st.telemetry.has(metric)) { st.telemetry.set(metric, new Map()); st.dirty.add("metrics"); }
    const byWorker = st.telemetry.get(metric);
    if (!byWorker.has(worker)) { byWorker.set(worker, {x: [], y: []}); st.dirty.add("charts"); }
    const line = byWorker.get(worker);
    line.x.push(x); line.y.push(y);
    if (metric === shownMetric) {
      if (!st.pending.has(worker)) st.pending.set(worker, {x: [], y: []});
      const p = st.pending.get(worker);
      p.x.push(x); p.y.push(y);
    }
  }
}

// ---------------------------------------------------------------- drawing the run view

let view = null;  // the selected run's state
let stream = null;  // its WebSocket
let shownMetric = null;
let frameAsked = false;

// Drawing costs a layout and a paint of the page: at most every DRAW_EVERY_MS (a person reads
// no faster), in an animation frame (none while the tab is hidden). The events themselves are
// applied as they arrive.
const DRAW_EVERY_MS = 250;
const CHART_EVERY_MS = 2000;
const CHART_POINTS = 3000;  // the newest points a chart keeps (the state keeps them all)
let chartsOnScreen = true;
let lastDraw = 0;
let lastChartDraw = 0;

function scheduleRender() {
  if (frameAsked) return;
  frameAsked = true;
  const wait = Math.max(0, lastDraw + DRAW_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    frameAsked = false;
    lastDraw = performance.now();
    render();
  }), wait);
}

// Write only what changed: an unchanged page is not laid out or painted again.
function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

const drawn = new Map();  // part of the page -> the signature it was last drawn from

function changed(part, signature) {
  if (drawn.get(part) === signature) return false;
  drawn.set(part, signature);
  return true;
}

function render() {
  renderRuns();
  if (!view) return;
  const st = view;
  setText("run-status", st.status);
  $("run-status").className = "status " + st.status;
  setText("run-argv", st.argv && st.argv.length ? "testfleet run " + st.argv.join(" ") : "");
  const total = st.total;
  setText("done", String(st.done));
  setText("total", total === null ? "?" : String(total));
  const width = total ? `${Math.min(100, (100 * st.done) / total).toFixed(1)}%` : "0%";
  const bad = (st.counts.failed || 0) + (st.counts.error || 0) > 0;
  if (changed("progress", `${width} ${bad} ${total}`)) {
    const fill = $("progress-fill");
    fill.style.width = width;
    fill.classList.toggle("bad", bad);
    $("progress-bar").setAttribute("aria-valuenow", String(st.done));
    if (total !== null) $("progress-bar").setAttribute("aria-valuemax", String(total));
  }
  const busy = [...st.workers.values()].filter((w) => w.nodeid).length;
  setText("queue", total === null ? "–" : String(Math.max(0, total - st.done - busy)));
  setText("eta", etaText(st));
  setText("exit", st.exitCode !== null ? `exit code ${st.exitCode}` : "");
  if (changed("counts", JSON.stringify(st.counts))) renderCounts(st);
  if (st.dirty.has("workers") && changed("workers", JSON.stringify([[...st.workers], st.messages.length, st.ended]))) {
    renderWorkers(st);
  }
  if (st.dirty.has("failures")) renderFailures(st);
  if (st.dirty.has("flaky")) renderFlaky(st);
  if (changed("exploration", JSON.stringify([st.budget, [...st.origins]]))) renderExploration(st);
  if (st.dirty.has("metrics")) renderMetricChoices(st);
  // a chart redraw costs tens of milliseconds (axes, every trace): new points go on every 2 s,
  // and only while the charts are on screen (scrolled back into view, they are drawn afresh)
  if (!chartsOnScreen) {
    st.pending.clear();
  } else if (st.dirty.has("charts") || performance.now() - lastChartDraw >= CHART_EVERY_MS) {
    lastChartDraw = performance.now();
    renderCharts(st);
  } else if (st.pending.size) {
    setTimeout(scheduleRender, CHART_EVERY_MS);
  }
  if (st.dirty.has("ended")) loadFinishedPanels(st);
  st.dirty.clear();
}

function etaText(st) {
  if (st.ended) {
    const took = st.endT && st.startT ? st.endT - st.startT : NaN;
    return isFinite(took) ? `took ${fmtSeconds(took)}` : "ended";
  }
  if (!st.done || st.total === null || st.lastResultT === null || st.startT === null) return "ETA –";
  const rate = st.done / Math.max(1e-3, st.lastResultT - st.startT);
  return `ETA ${fmtSeconds((st.total - st.done) / rate)}`;
}

function renderCounts(st) {
  const names = Object.keys(st.counts).sort((a, b) => {
    const ia = OUTCOME_ORDER.indexOf(a), ib = OUTCOME_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  $("counts").replaceChildren(...names.map((name) =>
    el("span", {class: `count ${name}`, "data-testid": `count-${name}`},
      el("b", {text: String(st.counts[name])}), ` ${name}`)));
}

function renderWorkers(st) {
  const rows = [...st.workers.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, {numeric: true}));
  $("workers").replaceChildren(...rows.map(([name, w]) => el("tr", {"data-worker": name},
    el("td", {class: "mono", text: name}),
    el("td", {class: w.state === "lost" ? "lost" : "", "data-testid": `worker-state-${name}`,
      text: w.state + (w.detail ? ` (${w.detail})` : "")}),
    el("td", {class: "mono", "data-testid": `worker-test-${name}`, text: w.nodeid || (st.ended ? "" : "idle")}))));
  $("messages").replaceChildren(...st.messages.map((text) => el("li", {text})));
}

function renderFailures(st) {
  const box = $("failures");
  $("failure-count").textContent = `(${st.failures.length})`;
  const shown = box.querySelectorAll("details.failure").length;
  if (shown === 0) box.replaceChildren();
  for (const f of st.failures.slice(shown, SHOWN_FAILURES)) {
    box.append(el("details", {class: "failure"},
      el("summary", {}, el("span", {class: "mono", text: f.nodeid}),
        el("span", {class: "muted", text: ` ${f.outcome}${f.message ? " – " + f.message : ""}`})),
      el("pre", {text: f.longrepr || f.message || "(no traceback)"})));
  }
  let more = box.querySelector(".more");
  if (st.failures.length > SHOWN_FAILURES) {
    if (!more) { more = el("p", {class: "muted more"}); box.append(more); }
    more.textContent = `and ${st.failures.length - SHOWN_FAILURES} more (see GET /runs/${st.runId}/results?outcome=failed)`;
  }
}

function renderFlaky(st) {
  $("flaky-count").textContent = `(${st.flaky.length})`;
  $("flaky").replaceChildren(...st.flaky.map((f) =>
    el("li", {class: "mono", text: `${f.nodeid} (passed on attempt ${f.attempt})`})));
}

function yieldRow(name, tally) {
  const share = tally.ran ? `${((100 * tally.failed) / tally.ran).toFixed(1)} %` : "–";
  return el("tr", {}, el("td", {class: "mono", text: name}), el("td", {text: String(tally.ran)}),
    el("td", {text: String(tally.failed)}), el("td", {text: share}));
}

function renderExploration(st) {
  $("budget").textContent = st.budget !== null ? `(budget ${st.budget})` : "";
  const bySource = new Map();
  const rules = [];
  for (const [origin, tally] of st.origins) {
    const source = origin.split(":", 1)[0];
    const sum = bySource.get(source) || {ran: 0, failed: 0};
    sum.ran += tally.ran; sum.failed += tally.failed;
    bySource.set(source, sum);
    if (origin.startsWith("rule:")) rules.push([origin.slice(5), tally]);
  }
  $("origins").replaceChildren(...(bySource.size ? [...bySource.entries()].sort().map(([s, t]) => yieldRow(s, t))
    : [el("tr", {}, el("td", {class: "muted", colspan: "4",
      text: st.ended ? "no variants" : "counted from the store once the run has ended"}))]));
  $("rules").replaceChildren(...(rules.length ? rules.sort().map(([r, t]) => yieldRow(r, t))
    : [el("tr", {}, el("td", {class: "muted", colspan: "4", text: "no rule proposals ran"}))]));
}

// ---------------------------------------------------------------- telemetry charts

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

// ---------------------------------------------------------------- panels of an ended run

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

// ---------------------------------------------------------------- wiring

function selectRun(runId) {
  if (view && view.runId === runId) return;
  if (stream) stream.close();
  stream = null; view = null; shownMetric = null;
  $("run-view").hidden = !runId;
  $("empty-view").hidden = Boolean(runId);
  if (!runId) { runsChanged = true; scheduleRender(); return; }
  view = newRunState(runId);
  drawn.clear();
  runsChanged = true;  // the selected run is highlighted
  const st = view;
  $("run-id").textContent = runId;
  $("failures").replaceChildren(el("p", {class: "muted", text: "none so far"}));
  $("flaky").replaceChildren(el("li", {class: "muted", text: "none so far"}));
  $("failure-count").textContent = ""; $("flaky-count").textContent = "";
  $("charts").replaceChildren(); $("metric").replaceChildren(); $("diff").replaceChildren();
  $("run-summary").replaceChildren();
  $("telemetry-note").hidden = false; $("telemetry-note").textContent = "no telemetry yet";
  $("coverage").replaceChildren(el("p", {class: "muted", text: "shown once the run has ended"}));
  $("analysis").replaceChildren(el("p", {class: "muted", text: "shown once the run has ended"}));
  st.dirty.add("workers");
  stream = new Stream(`/ws/runs/${encodeURIComponent(runId)}`, (events) => {
    if (view !== st) return;
    for (const e of events) if (e.run_id === runId) applyRunEvent(st, e);
    if (st.ended && stream) stream.closed = true;  // nothing more will come: no reconnect after close
    scheduleRender();
  }, (state, closing) => {
    if (state === "refused" && view === st) showStoredRun(st, closing);
    const badge = $("run-conn");
    badge.textContent = state === "live" ? "live" : state === "refused" ? "not live" : state;
    badge.className = "conn " + (state === "live" ? "live" : state === "reconnecting" ? "down" : "");
  }, true);
  scheduleRender();
}

// A run the server has no events of (before its start, or unknown): what the store says of it.
async function showStoredRun(st, closing) {
  const answer = await api(`/runs/${encodeURIComponent(st.runId)}`);
  if (view !== st) return;
  if (!answer.ok) {
    st.status = closing && closing.reason ? closing.reason : "unknown";
    $("run-summary").replaceChildren(el("p", {class: "muted", text: `no events of this run: ${answer.message}`}));
    scheduleRender();
    return;
  }
  const run = answer.data || {};
  st.status = run.status || st.status;
  if (run.exit_code !== undefined && run.exit_code !== null) st.exitCode = run.exit_code;
  if (run.counts && typeof run.counts === "object") Object.assign(st.counts, run.counts);
  if (typeof run.collected === "number") { st.total = run.collected; st.done = run.collected; }
  $("run-summary").replaceChildren(renderValue(run));
  markEnded(st, {});
  scheduleRender();
}

function runFromHash() {
  const match = /(?:^#|&)run=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function start() {
  new Stream("/ws/events", (events) => {
    for (const e of events) if (e.run_id) applyListEvent(e);
    scheduleRender();
  }, (state) => {
    const badge = $("connection");
    badge.textContent = state === "live" ? "connected" : state;
    badge.className = "conn " + (state === "live" ? "live" : state === "reconnecting" ? "down" : "");
  });
  loadRunHistory();
  $("metric").addEventListener("change", () => {
    shownMetric = $("metric").value;
    if (view) { view.dirty.add("charts"); scheduleRender(); }
  });
  $("diff-go").addEventListener("click", showDiff);
  new IntersectionObserver((entries) => {
    const onScreen = entries[entries.length - 1].isIntersecting;
    if (onScreen && !chartsOnScreen && view) view.dirty.add("charts");  // missed points: draw afresh
    chartsOnScreen = onScreen;
    scheduleRender();
  }).observe($("telemetry-card"));
  window.addEventListener("hashchange", () => selectRun(runFromHash()));
  selectRun(runFromHash());
}

start();
