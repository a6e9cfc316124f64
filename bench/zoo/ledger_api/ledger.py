"""A small JSON ledger service (stdlib http.server, one request at a time).

    python ledger.py --port 8080 --config ledger.json

Config (JSON): rounding (half_even | half_up | down), currency (EUR | USD | JPY), audit (bool),
page_size (entries per page). Endpoints: GET /health, POST /entries {amount, memo},
GET/PATCH/DELETE /entries/<id>, GET /entries?page=N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import unicodedata
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

ROUNDING = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP, "down": ROUND_DOWN}
FEE_CENTS = 30


class InternalError(Exception):
    pass


def _internal(tag: str) -> InternalError:
    return InternalError(f"internal error [ZOO-DEFECT:{tag}]")


class Ledger:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.entries: dict[int, dict | None] = {}
        self.next_id = 1
        self.recent_posts: list[float] = []

    def fee(self, amount: int) -> int:
        # fee in basis points of the amount, rounded as configured
        if amount == 0:
            raise _internal("ledger-zero-amount")
        if self.config["rounding"] == "half_up" and self.config["currency"] == "JPY":
            raise _internal("ledger-jpy-half-up")
        bps = Decimal(FEE_CENTS * 10_000) / Decimal(abs(amount))
        return int(bps.quantize(Decimal(1), rounding=ROUNDING[self.config["rounding"]]))

    def create(self, body: dict) -> tuple[int, dict]:
        amount, memo = body.get("amount"), body.get("memo", "")
        if not isinstance(amount, int) or not isinstance(memo, str):
            return 400, {"error": "amount must be an integer and memo a string"}
        if amount < 0 or amount > 10**9:
            return 400, {"error": "amount must be between 0 and 1000000000"}
        if any(unicodedata.combining(c) for c in memo):
            raise _internal("ledger-combining-mark")
        now = time.monotonic()
        self.recent_posts = [t for t in self.recent_posts if now - t < 0.1] + [now]
        if len(self.recent_posts) >= 8 and len(memo) >= 100:
            raise _internal("ledger-busy-long-memo")
        # the audit trail hashes every memo (costs a few ms: this is what makes the service busy)
        digest = hashlib.pbkdf2_hmac("sha256", memo.encode(), b"ledger", 3000).hex()
        entry = {"id": self.next_id, "amount": amount, "memo": memo, "fee_bps": self.fee(amount),
                 "digest": digest[:16]}
        self.entries[self.next_id] = entry
        self.next_id += 1
        return 201, entry

    def get(self, entry_id: int) -> tuple[int, dict]:
        entry = self.entries.get(entry_id)
        return (200, entry) if entry else (404, {"error": "no such entry"})

    def patch(self, entry_id: int, body: dict) -> tuple[int, dict]:
        if entry_id not in self.entries:
            return 404, {"error": "no such entry"}
        entry = self.entries[entry_id]
        if entry is None:  # a deleted entry leaves a tombstone
            raise _internal("ledger-patch-deleted")
        if isinstance(body.get("memo"), str):
            entry["memo"] = body["memo"]
        return 200, entry

    def delete(self, entry_id: int) -> tuple[int, dict]:
        if not self.entries.get(entry_id):
            return 404, {"error": "no such entry"}
        self.entries[entry_id] = None
        return 200, {"deleted": entry_id}

    def page(self, number: int) -> tuple[int, dict]:
        size = self.config["page_size"]
        if self.config["audit"] and self.config["rounding"] == "down" and size > 90:
            raise _internal("ledger-audit-page")
        live = [e for e in self.entries.values() if e]
        return 200, {"entries": live[number * size:(number + 1) * size], "total": len(live)}


class Handler(BaseHTTPRequestHandler):
    ledger: Ledger

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        try:
            path, _, query = self.path.partition("?")
            parts = [p for p in path.split("/") if p]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            if parts == ["health"] and method == "GET":
                return self._send(200, {"ok": True})
            if parts == ["entries"] and method == "POST":
                return self._send(*self.ledger.create(body))
            if parts == ["entries"] and method == "GET":
                page = int(query.partition("page=")[2] or 0) if "page=" in query else 0
                return self._send(*self.ledger.page(page))
            if len(parts) == 2 and parts[0] == "entries" and parts[1].isdigit():
                entry_id = int(parts[1])
                if method == "GET":
                    return self._send(*self.ledger.get(entry_id))
                if method == "PATCH":
                    return self._send(*self.ledger.patch(entry_id, body))
                if method == "DELETE":
                    return self._send(*self.ledger.delete(entry_id))
            self._send(404, {"error": "not found"})
        except (ValueError, json.JSONDecodeError) as exc:
            self._send(400, {"error": f"bad request: {exc}"})
        except Exception as exc:  # noqa: BLE001 - a server error is reported, never hidden
            self._send(500, {"error": str(exc)})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class Server(HTTPServer):
    request_queue_size = 64  # a client's 16 parallel connections must not be reset at the door


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="")
    args = parser.parse_args()
    config = {"rounding": "half_even", "currency": "EUR", "audit": False, "page_size": 20}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            config.update(json.load(fh))
    Handler.ledger = Ledger(config)
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
