"""A key-value server speaking JSON lines over TCP, configured from a JSON file.

    python kv.py --port 7000 --config kv.json

One request per line, e.g. {"op": "set", "key": "a", "value": "1"}; one JSON answer per line:
{"ok": true, ...} or {"ok": false, "error": "..."}. Ops: set, get, del, incr, expire (seconds),
stats. Config: max_key (bytes), max_keys, eviction (lru | lfu | fifo), persistence
(none | aof | snapshot).
"""

from __future__ import annotations

import argparse
import json
import socketserver
import sys
import time
from collections import OrderedDict

CONFIG = {"max_key": 250, "max_keys": 1000, "eviction": "lru", "persistence": "none"}


class Internal(Exception):
    pass


def _internal(tag: str) -> Internal:
    return Internal(f"server fault [ZOO-DEFECT:{tag}]")


class Store:
    def __init__(self) -> None:
        self.data: OrderedDict[str, str] = OrderedDict()
        self.hits: dict[str, int] = {}
        self.expires: dict[str, float] = {}
        self.aof: list[str] = []
        self.sessions: list[object] = []  # handlers seen (kept by mistake: grows per connection)

    def _evict(self) -> None:
        if CONFIG["eviction"] == "lfu" and CONFIG["persistence"] == "aof" and CONFIG["max_keys"] <= 8:
            raise _internal("kv-lfu-aof-small")
        if CONFIG["eviction"] == "lfu":
            victim = min(self.data, key=lambda k: self.hits.get(k, 0))
        else:
            victim = next(iter(self.data))
        self.data.pop(victim)
        self.expires.pop(victim, None)

    def handle(self, req: dict) -> dict:
        op, key = req.get("op"), req.get("key")
        if op == "stats":
            return {"ok": True, "keys": len(self.data), "sessions": len(self.sessions)}
        if not isinstance(key, str) or not key:
            return {"ok": False, "error": "key must be a non-empty string"}
        size = len(key.encode())
        if size > CONFIG["max_key"]:
            return {"ok": False, "error": f"key longer than {CONFIG['max_key']} bytes"}
        if size == CONFIG["max_key"]:  # the length prefix does not fit the buffer
            raise _internal("kv-key-at-limit")
        expired = key in self.expires and self.expires[key] <= time.monotonic()
        if op == "set":
            value = req.get("value")
            if not isinstance(value, str):
                return {"ok": False, "error": "value must be a string"}
            if "\x00" in value:
                raise _internal("kv-nul-value")
            if key not in self.data and len(self.data) >= CONFIG["max_keys"]:
                self._evict()
            self.data[key] = value
            self.data.move_to_end(key)
            self.expires.pop(key, None)
            if CONFIG["persistence"] == "aof":
                self.aof.append(json.dumps(req))
            return {"ok": True}
        if op == "get":
            if expired or key not in self.data:
                return {"ok": True, "value": None}
            self.hits[key] = self.hits.get(key, 0) + 1
            self.data.move_to_end(key)
            return {"ok": True, "value": self.data[key]}
        if op == "del":
            self.expires.pop(key, None)
            return {"ok": True, "deleted": self.data.pop(key, None) is not None}
        if op == "incr":
            if expired:
                raise _internal("kv-incr-expired")
            current = self.data.get(key, "0")
            if not current.lstrip("-").isdigit():
                return {"ok": False, "error": "value is not an integer"}
            self.data[key] = str(int(current) + 1)
            return {"ok": True, "value": int(self.data[key])}
        if op == "expire":
            seconds = req.get("seconds")
            if not isinstance(seconds, (int, float)) or seconds < 0:
                return {"ok": False, "error": "seconds must be a number >= 0"}
            if key in self.data:
                self.expires[key] = time.monotonic() + seconds
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


STORE = Store()


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        STORE.sessions.append(self)
        if len(STORE.sessions) > 120:
            self._reply({"ok": False, "error": str(_internal("kv-session-leak"))})
            return
        started, handled = time.monotonic(), 0
        for line in self.rfile:
            try:
                answer = STORE.handle(json.loads(line))
            except json.JSONDecodeError:
                answer = {"ok": False, "error": "bad JSON"}
            except Exception as exc:  # noqa: BLE001
                answer = {"ok": False, "error": str(exc)}
            handled += 1
            # an append-only file flushed while the connection is busy stalls it
            if CONFIG["persistence"] == "aof" and handled > 50 and time.monotonic() - started > 0.05:
                answer = {"ok": False, "error": str(_internal("kv-aof-stall"))}
            self._reply(answer)

    def _reply(self, answer: dict) -> None:
        self.wfile.write(json.dumps(answer).encode() + b"\n")
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="")
    args = parser.parse_args()
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            CONFIG.update(json.load(fh))
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", args.port), Handler) as server:
        print(f"listening on {server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
