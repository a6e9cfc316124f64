// testfleet dashboard, shared parts: DOM helpers, the REST calls and the reconnecting WebSocket.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");

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
