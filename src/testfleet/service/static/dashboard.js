// testfleet dashboard: the runs list and one run's live view, fed by the server's event stream.
//
// Every event carries the server's sequence number (seq). The page keeps the last seq it applied
// and, when a WebSocket closes, reconnects with ?after=LAST: the server replays what came since,
// so nothing is missed, and an event at or below LAST is ignored, so nothing counts twice. A
// reload starts from after=0 and rebuilds the same state from the same events. Events only
// change the state; the page is drawn from it at most every DRAW_EVERY_MS, in an animation frame.
// Loaded after common.js (helpers, REST, the WebSocket), charts.js and panels.js.
"use strict";

window.__latencies = [];  // seconds from a result's making (event.t) to its arrival here: the bench reads it

const TERMINAL = new Set(["finished", "interrupted", "failed"]);
const OUTCOME_ORDER = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "flaky"];
const SHOWN_FAILURES = 200;  // the first failures get a traceback each; the rest are counted

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
