"""A small JSON HTTP inventory service: testfleet's bundled system under test.

Run it with ``python inventory_service.py --port 0 --host 127.0.0.1``; the first
line it prints on stdout is the port it bound, so a test harness can start it on a
free port and read that port back.

Endpoints::

    GET    /health                       -> 200 {"status": "ok"}
    POST   /items   {name, quantity, price} -> 201 item (with "id")
    GET    /items?limit=&offset=         -> 200 {"items": [...], "total": n, "limit", "offset"}
    GET    /items/{id}                   -> 200 item | 404
    PATCH  /items/{id} {any of name, quantity, price} -> 200 item | 404 | 422
    DELETE /items/{id}                   -> 204 | 404
    POST   /orders  {item_id, quantity}  -> 201 order | 404 | 409 (insufficient stock) | 422
    GET    /metrics                      -> 200 Prometheus text: requests by method and status, items, stock

Validation errors answer 422 with ``{"error": "validation", "details": [...]}``.
Data lives in memory, guarded by one lock.

Started with ``--defects`` (or ``INVENTORY_DEFECTS=1`` in its environment) it also carries three
planted defects for ``bench/exploration.py``; see "Planted defects" at the end of this file. They
are off by default: without the flag the service answers exactly as listed above.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_NAME_LENGTH = 200
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass
class Item:
    id: int
    name: str
    quantity: int
    price: float


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _validation(details: list[str]) -> ApiError:
    return ApiError(422, {"error": "validation", "details": details})


def _not_found(what: str) -> ApiError:
    return ApiError(404, {"error": "not_found", "details": [what]})


def validate_item_fields(payload: Any, *, partial: bool) -> dict[str, Any]:
    """Check an item payload; with ``partial`` every field is optional (PATCH)."""
    if not isinstance(payload, dict):
        raise _validation(["body must be a JSON object"])
    errors: list[str] = []
    unknown = sorted(set(payload) - {"name", "quantity", "price"})
    errors += [f"unknown field: {key}" for key in unknown]
    for key in ("name", "quantity", "price"):
        if key not in payload and not partial:
            errors.append(f"{key}: required")
    if "name" in payload:
        name = payload["name"]
        if not isinstance(name, str) or not name.strip():
            errors.append("name: must be a non-empty string")
        elif len(name) > MAX_NAME_LENGTH:
            errors.append(f"name: at most {MAX_NAME_LENGTH} characters")
    if "quantity" in payload:
        qty = payload["quantity"]
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
            errors.append("quantity: must be an integer >= 0")
    if "price" in payload:
        price = payload["price"]
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0:
            errors.append("price: must be a number >= 0")
    if errors:
        raise _validation(errors)
    return {k: (float(v) if k == "price" else v) for k, v in payload.items()}


class Inventory:
    """The in-memory store. Every method is atomic under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, Item] = {}
        self._next_item_id = 1
        self._next_order_id = 1
        self.answered: dict[tuple[str, int], int] = {}
        self.defects: PlantedDefects | None = None  # set only with --defects (see the end)

    def count(self, method: str, status: int) -> None:
        with self._lock:
            self.answered[method, status] = self.answered.get((method, status), 0) + 1

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return len(self._items), sum(item.quantity for item in self._items.values())

    def create(self, fields: dict[str, Any]) -> Item:
        with self._lock:
            item = Item(id=self._next_item_id, **fields)
            self._items[item.id] = item
            self._next_item_id += 1
            return item

    def get(self, item_id: int) -> Item:
        with self._lock:
            if item_id not in self._items:
                raise _not_found(f"item {item_id}")
            return self._items[item_id]

    def page(self, limit: int, offset: int) -> tuple[list[Item], int]:
        with self._lock:
            items = sorted(self._items.values(), key=lambda i: i.id)
            # Known limitation: a negative offset is not rejected; Python slicing
            # then counts it from the end of the list.
            return items[offset:][:limit], len(items)

    def update(self, item_id: int, fields: dict[str, Any]) -> Item:
        with self._lock:
            if item_id not in self._items:
                raise _not_found(f"item {item_id}")
            item = self._items[item_id]
            for key, value in fields.items():
                setattr(item, key, value)
            return item

    def delete(self, item_id: int) -> None:
        with self._lock:
            if self._items.pop(item_id, None) is None:
                raise _not_found(f"item {item_id}")

    def order(self, item_id: int, quantity: int) -> dict[str, Any]:
        with self._lock:
            if item_id not in self._items:
                raise _not_found(f"item {item_id}")
            item = self._items[item_id]
            if quantity > item.quantity:
                raise ApiError(409, {"error": "insufficient_stock", "available": item.quantity})
            item.quantity -= quantity
            order = {"id": self._next_order_id, "item_id": item_id, "quantity": quantity,
                     "total": round(quantity * item.price, 2), "remaining": item.quantity}
            self._next_order_id += 1
            return order


def _int_param(query: dict[str, list[str]], key: str, default: int) -> int:
    raw = query.get(key, [str(default)])[-1]
    try:
        return int(raw)
    except ValueError:
        raise _validation([f"{key}: must be an integer"]) from None


def _item_id(segment: str) -> int:
    if not segment.isdigit():
        raise _not_found(f"item {segment}")
    return int(segment)


def _order(inv: Inventory, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _validation(["body must be a JSON object"])
    errors = []
    for key in ("item_id", "quantity"):
        value = payload.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(f"{key}: must be an integer >= 1")
    if errors:
        raise _validation(errors)
    return inv.order(payload["item_id"], payload["quantity"])


def parse_json_body(data: bytes) -> Any:
    """A request body as JSON (an empty body is ``None``); 422 when it is not JSON."""
    try:
        return json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _validation(["body is not valid JSON"]) from None


def metrics_text(inv: Inventory) -> bytes:
    """``GET /metrics``: Prometheus text exposition (what ``[tool.testfleet.sut] metrics`` scrapes)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    requests = Gauge("inventory_requests", "requests answered, by method and status",
                     ["method", "status"], registry=registry)
    for (method, status), count in sorted(inv.answered.items()):
        requests.labels(method, str(status)).set(count)
    items, stock = inv.totals()
    Gauge("inventory_items", "items in the store", registry=registry).set(items)
    Gauge("inventory_stock_units", "units in stock, all items", registry=registry).set(stock)
    return generate_latest(registry)


def route(inv: Inventory, method: str, path: str, query: str,
          json_body: Callable[[], Any]) -> tuple[int, Any]:
    """Answer one request and count it (for ``/metrics``)."""
    planted = None if inv.defects is None else inv.defects.answer(inv, method, path, json_body)
    status, body = planted if planted is not None else _route(inv, method, path, query, json_body)
    inv.count(method, status)
    return status, body


def _route(inv: Inventory, method: str, path: str, query: str,
           json_body: Callable[[], Any]) -> tuple[int, Any]:
    """Answer one request: ``(status, JSON body or None)``. ``json_body()`` reads and parses the
    request body, only for the endpoints that take one. Shared by both servers (this stdlib
    one and ``inventory_asgi.py``)."""
    parts = [p for p in path.split("/") if p]
    try:
        match method, parts:
            case "GET", ["health"]:
                return 200, {"status": "ok"}
            case "POST", ["items"]:
                item = inv.create(validate_item_fields(json_body(), partial=False))
                return 201, asdict(item)
            case "GET", ["items"]:
                params = parse_qs(query)
                limit = _int_param(params, "limit", DEFAULT_LIMIT)
                offset = _int_param(params, "offset", 0)
                if not 1 <= limit <= MAX_LIMIT:
                    raise _validation([f"limit: must be between 1 and {MAX_LIMIT}"])
                items, total = inv.page(limit, offset)
                return 200, {"items": [asdict(i) for i in items], "total": total,
                             "limit": limit, "offset": offset}
            case "GET", ["items", item_id]:
                return 200, asdict(inv.get(_item_id(item_id)))
            case "PATCH", ["items", item_id]:
                fields = validate_item_fields(json_body(), partial=True)
                return 200, asdict(inv.update(_item_id(item_id), fields))
            case "DELETE", ["items", item_id]:
                inv.delete(_item_id(item_id))
                return 204, None
            case "POST", ["orders"]:
                return 201, _order(inv, json_body())
            case _:
                return 404, {"error": "not_found", "details": [f"{method} {path}"]}
    except ApiError as exc:
        return exc.status, exc.body


class Handler(BaseHTTPRequestHandler):
    server_version = "inventory/1.0"
    inventory: Inventory  # set by make_server

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass  # keep the test output clean

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return parse_json_body(self.rfile.read(length))

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        if method == "GET" and url.path == "/metrics":
            data = metrics_text(self.inventory)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send(*route(self.inventory, method, url.path, url.query, self._json_body))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog of 5 makes a burst of more than 5 new connections (every
    # request is one: HTTP/1.0) end in resets and 1 s SYN retries
    request_queue_size = 128


def make_server(host: str, port: int, *, defects: bool = False) -> ThreadingHTTPServer:
    inventory = Inventory()
    if defects:
        inventory.defects = PlantedDefects().start()
    handler = type("InventoryHandler", (Handler,), {"inventory": inventory})
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--defects", action="store_true",
                        default=os.environ.get("INVENTORY_DEFECTS", "") not in ("", "0"),
                        help="plant the defects bench/exploration.py looks for (also: INVENTORY_DEFECTS=1)")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, defects=args.defects)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# =============================================================================================
# Planted defects, for bench/exploration.py. OFF unless the service starts with --defects or
# INVENTORY_DEFECTS=1 (then Inventory.defects is set and route() asks it first). Each answers
# 500 with {"error": "defect:NAME"} under one condition that exploration has to find:
#
# 1. defect:payload-under-load -- POST /uploads {"payload": "..."} of >= UPLOAD_LIMIT characters
#    fails while the service process's own CPU use over the last CPU_WINDOW seconds (measured
#    with time.process_time, all threads) is at least BUSY_CORES cores. Load comes from
#    POST /load {"percent": 0..100, "seconds": s}: LOAD_THREADS background threads hash a
#    buffer (hashlib releases the GIL) `percent` % of every 10 ms for `s` seconds, so the CPU is
#    really spent, and telemetry (sut.cpu_percent) sees it as well.
# 2. defect:order -- PATCH /items/{id} right after DELETE /items/{id} of the same item (no other
#    request in between) answers 500 instead of 404.
# 3. defect:config-pair -- PUT /config {"cache": "off"|"lru"|"lfu", "threads": int} with
#    cache == "lfu" and threads >= LFU_MAX_THREADS answers 500 (any other pair: 200).
# =============================================================================================

UPLOAD_LIMIT = 900
BUSY_CORES = 1.5
CPU_WINDOW = 0.08
LOAD_THREADS = 2
LFU_MAX_THREADS = 12
_HASHED = b"\x00" * (1 << 20)


def _defect(name: str, **details: Any) -> tuple[int, Any]:
    return 500, {"error": f"defect:{name}", **details}


class PlantedDefects:
    """The three defects above, and what they need: a CPU monitor and a load generator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, float]] = deque(maxlen=200)  # (monotonic, process CPU s)
        self._just_deleted: int | None = None

    def start(self) -> PlantedDefects:
        threading.Thread(target=self._monitor, name="cpu-monitor", daemon=True).start()
        return self

    def _monitor(self) -> None:
        while True:
            self._samples.append((time.monotonic(), time.process_time()))
            time.sleep(0.005)

    def cpu_cores(self, window: float = CPU_WINDOW) -> float:
        """This process's CPU use over the last ``window`` seconds, in cores (1.0 = one busy core)."""
        now_wall, now_cpu = time.monotonic(), time.process_time()
        then = next(((w, c) for w, c in reversed(self._samples) if now_wall - w >= window), None)
        if then is None:
            return 0.0
        return (now_cpu - then[1]) / (now_wall - then[0])

    @staticmethod
    def _burn(percent: float, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (start := time.monotonic()) < end:
            busy_until = start + 0.010 * percent / 100
            while time.monotonic() < busy_until:
                hashlib.sha256(_HASHED).digest()
            rest = start + 0.010 - time.monotonic()
            if rest > 0:
                time.sleep(rest)

    def answer(self, inv: Inventory, method: str, path: str,
               json_body: Callable[[], Any]) -> tuple[int, Any] | None:
        """A planted answer, or None to let the service answer as usual."""
        parts = [p for p in path.split("/") if p]
        with self._lock:
            just_deleted, self._just_deleted = self._just_deleted, None
        try:
            match method, parts:
                case "POST", ["load"]:
                    body = json_body() or {}
                    percent = max(0.0, min(100.0, float(body.get("percent", 0))))
                    seconds = max(0.0, min(5.0, float(body.get("seconds", 0.1))))
                    for _ in range(LOAD_THREADS if percent > 0 else 0):
                        threading.Thread(target=self._burn, args=(percent, seconds), daemon=True).start()
                    return 202, {"percent": percent, "seconds": seconds}
                case "POST", ["uploads"]:
                    payload = (json_body() or {}).get("payload", "")
                    cores = self.cpu_cores()
                    if len(payload) >= UPLOAD_LIMIT and cores >= BUSY_CORES:
                        return _defect("payload-under-load", size=len(payload), cpu_cores=round(cores, 2))
                    return 201, {"size": len(payload), "cpu_cores": round(cores, 2)}
                case "PUT", ["config"]:
                    body = json_body() or {}
                    if body.get("cache") == "lfu" and int(body.get("threads", 1)) >= LFU_MAX_THREADS:
                        return _defect("config-pair", cache=body["cache"], threads=body["threads"])
                    return 200, {"cache": body.get("cache"), "threads": body.get("threads")}
                case "DELETE", ["items", item_id] if item_id.isdigit():
                    status, answer = _route(inv, method, path, "", json_body)
                    if status == 204:
                        with self._lock:
                            self._just_deleted = int(item_id)
                    return status, answer
                case "PATCH", ["items", item_id] if item_id.isdigit() and int(item_id) == just_deleted:
                    return _defect("order", item=int(item_id))
        except (TypeError, ValueError, AttributeError) as exc:
            return _validation([str(exc)]).status, {"error": "validation", "details": [str(exc)]}
        return None


if __name__ == "__main__":
    sys.exit(main())
