"""Write the inventory service's traffic sample: a HAR, a JSON Lines capture and an access log.

    python examples/inventory/traffic/make_sample.py [--seed 2024] [--out DIR]

Deterministic for a seed (the same files byte for byte). A small simulation of the service's
state (items with stock, deletions, orders) decides each answer, so statuses are the ones the
service would give: 404 for unknown or deleted items, 409 for orders over the stock, 422 for
invalid payloads or limits. Names come from a small vocabulary, quantities are skewed (most
small, a few large), prices have two decimals, optional fields (PATCH fields, limit/offset) are
sometimes missing. The JSON Lines capture carries a few secrets for ingest to redact
(Authorization, Cookie, X-Api-Key headers and an ``access_token`` query parameter).
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
START = datetime(2024, 5, 6, 9, 0, 0, tzinfo=UTC)
HOST = "http://127.0.0.1:8080"
ADJECTIVES = ["steel", "brass", "blue", "mini", "heavy", "nylon", "zinc", "red"]
NOUNS = ["widget", "bolt", "gear", "bracket", "spring", "valve", "washer", "hinge", "clamp"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "python-httpx/0.27.0",
    "inventory-sync/2.3 (+https://example.test/sync)",
    "curl/8.5.0",
]
MIX = {"GET /items/{id}": 30, "GET /items": 24, "POST /orders": 14, "POST /items": 12,
       "PATCH /items/{id}": 10, "GET /health": 6, "DELETE /items/{id}": 4}


class Simulation:
    """The service's state, and the answer it gives to each request."""

    def __init__(self, rng: random.Random, preloaded: int = 40) -> None:
        self.rng = rng
        self.items: dict[int, dict[str, Any]] = {}
        self.deleted: list[int] = []
        self.next_id = 1
        self.next_order = 1
        for _ in range(preloaded):
            self._create(self.new_item())

    def name(self) -> str:
        return f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}"

    def quantity(self) -> int:
        return min(int(self.rng.lognormvariate(2.6, 1.1)), 5000)

    def price(self) -> float:
        return round(self.rng.lognormvariate(2.3, 0.9), 2)

    def new_item(self) -> dict[str, Any]:
        return {"name": self.name(), "quantity": self.quantity(), "price": self.price()}

    def _create(self, fields: dict[str, Any]) -> dict[str, Any]:
        item = {"id": self.next_id, **fields}
        self.items[self.next_id] = item
        self.next_id += 1
        return item

    def some_id(self) -> int:
        roll = self.rng.random()
        if roll < 0.06 and self.deleted:
            return self.rng.choice(self.deleted)
        if roll < 0.09 or not self.items:
            return self.next_id + self.rng.randint(5, 500)
        ids = sorted(self.items)  # recent items are asked for more often
        return ids[min(int(self.rng.expovariate(1 / 12)), len(ids) - 1) * -1 - 1]

    def request(self) -> dict[str, Any]:
        """One request and its answer: method, path, query, body, status, answer."""
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        method, template = kind.split(" ")
        query: dict[str, Any] = {}
        body: Any = None
        if template == "/health":
            return {"method": method, "path": "/health", "query": query, "body": None,
                    "status": 200, "answer": {"status": "ok"}}
        if kind == "GET /items":
            if self.rng.random() < 0.7:
                query["limit"] = self.rng.choices([10, 20, 50, 100, 0, 1000], [30, 35, 20, 10, 1, 1])[0]
            if self.rng.random() < 0.5:
                query["offset"] = query.get("limit", 50) * self.rng.choices(range(4), [50, 25, 15, 10])[0]
            limit, offset = query.get("limit", 50), query.get("offset", 0)
            if not 1 <= limit <= 500:
                return self._answer(method, "/items", query, None, 422,
                                    {"error": "validation", "details": ["limit: must be between 1 and 500"]})
            page = [self.items[i] for i in sorted(self.items)][offset:offset + limit]
            return self._answer(method, "/items", query, None, 200,
                                {"items": page, "total": len(self.items), "limit": limit, "offset": offset})
        if kind == "POST /items":
            body = self.new_item()
            if self.rng.random() < 0.06:
                body.pop(self.rng.choice(["price", "quantity"]))
                return self._answer(method, "/items", query, body, 422,
                                    {"error": "validation", "details": ["price: required"]})
            return self._answer(method, "/items", query, body, 201, dict(self._create(body)))
        if kind == "POST /orders":
            item_id = self.some_id()
            quantity = max(1, min(int(self.rng.paretovariate(1.3)), 400))
            body = {"item_id": item_id, "quantity": quantity}
            if self.rng.random() < 0.03:
                body["quantity"] = 0
                return self._answer(method, "/orders", query, body, 422,
                                    {"error": "validation", "details": ["quantity: must be an integer >= 1"]})
            item = self.items.get(item_id)
            if item is None:
                return self._answer(method, "/orders", query, body, 404,
                                    {"error": "not_found", "details": [f"item {item_id}"]})
            if quantity > item["quantity"]:
                return self._answer(method, "/orders", query, body, 409,
                                    {"error": "insufficient_stock", "available": item["quantity"]})
            item["quantity"] -= quantity
            order = {"id": self.next_order, "item_id": item_id, "quantity": quantity,
                     "total": round(quantity * item["price"], 2), "remaining": item["quantity"]}
            self.next_order += 1
            return self._answer(method, "/orders", query, body, 201, order)
        item_id = self.some_id()
        path = f"/items/{item_id}"
        item = self.items.get(item_id)
        if method == "PATCH":
            fresh = self.new_item()
            body = {k: v for k, v in fresh.items() if self.rng.random() < 0.45} or {"quantity": fresh["quantity"]}
            if self.rng.random() < 0.04:
                body["quantity"] = -self.rng.randint(1, 20)
                return self._answer(method, path, query, body, 422,
                                    {"error": "validation", "details": ["quantity: must be an integer >= 0"]})
        if item is None:
            return self._answer(method, path, query, body, 404,
                                {"error": "not_found", "details": [f"item {item_id}"]})
        if method == "GET":
            return self._answer(method, path, query, None, 200, dict(item))
        if method == "PATCH":
            item.update(body)
            return self._answer(method, path, query, body, 200, dict(item))
        del self.items[item_id]
        self.deleted.append(item_id)
        return self._answer(method, path, query, None, 204, None)

    def _answer(self, method: str, path: str, query: dict[str, Any], body: Any, status: int,
                answer: Any) -> dict[str, Any]:
        return {"method": method, "path": path, "query": query, "body": body, "status": status,
                "answer": answer}

    def latency(self, event: dict[str, Any]) -> float:
        base = {"GET": 3.0, "POST": 6.0, "PATCH": 5.0, "DELETE": 4.0}[event["method"]]
        if event["path"] == "/items" and event["method"] == "GET":
            base += event["query"].get("limit", 50) * 0.08
        return round(base * self.rng.lognormvariate(0, 0.45), 3)


class Client:
    def __init__(self, rng: random.Random, index: int) -> None:
        self.ip = f"10.0.{index // 200}.{10 + index % 200}"
        self.agent = rng.choice(AGENTS)
        self.sid = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        self.token = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                             for _ in range(40))
        self.kind = rng.choice(["cookie", "bearer", "apikey"])


def _events(seed: int, count: int, clients: int) -> list[tuple[dict[str, Any], Client, datetime, float]]:
    rng = random.Random(seed)
    sim = Simulation(rng)
    pool = [Client(rng, i) for i in range(clients)]
    weights = [1 / (i + 1) for i in range(clients)]  # a few busy clients, a long tail
    now = START
    out = []
    for _ in range(count):
        now += timedelta(seconds=round(rng.expovariate(1 / 2.5), 3))
        event = sim.request()
        out.append((event, rng.choices(pool, weights)[0], now, sim.latency(event)))
    return out


def _target(event: dict[str, Any]) -> str:
    return event["path"] + ("?" + urlencode(event["query"]) if event["query"] else "")


def write_har(path: Path, seed: int, count: int = 60) -> None:
    entries = []
    for event, client, when, latency in _events(seed, count, clients=1):
        headers = [{"name": "Host", "value": "127.0.0.1:8080"},
                   {"name": "User-Agent", "value": client.agent},
                   {"name": "Accept", "value": "application/json"},
                   {"name": "Cookie", "value": f"sid={client.sid}; theme=dark"}]
        request: dict[str, Any] = {
            "method": event["method"], "url": HOST + _target(event), "httpVersion": "HTTP/1.1",
            "headers": headers, "cookies": [{"name": "sid", "value": client.sid},
                                            {"name": "theme", "value": "dark"}],
            "queryString": [{"name": k, "value": str(v)} for k, v in event["query"].items()],
            "headersSize": -1, "bodySize": 0}
        if event["body"] is not None:
            text = json.dumps(event["body"])
            headers.append({"name": "Content-Type", "value": "application/json"})
            request["postData"] = {"mimeType": "application/json", "text": text}
            request["bodySize"] = len(text)
        answer = "" if event["answer"] is None else json.dumps(event["answer"])
        entries.append({
            "startedDateTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "time": latency, "request": request,
            "response": {"status": event["status"], "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "Content-Type", "value": "application/json"}],
                         "cookies": [], "content": {"size": len(answer), "mimeType": "application/json",
                                                    "text": answer},
                         "redirectURL": "", "headersSize": -1, "bodySize": len(answer)},
            "cache": {}, "timings": {"send": 0.05, "wait": round(latency - 0.1, 3), "receive": 0.05}})
    har = {"log": {"version": "1.2", "creator": {"name": "make_sample.py", "version": "1"},
                   "pages": [], "entries": entries}}
    path.write_text(json.dumps(har, indent=2) + "\n", encoding="utf-8")


def write_jsonl(path: Path, seed: int, count: int = 300) -> None:
    rng = random.Random(seed + 1)
    lines = []
    for event, client, when, latency in _events(seed, count, clients=7):
        headers = {"user-agent": client.agent, "accept": "application/json"}
        if client.kind == "cookie":
            headers["cookie"] = f"sid={client.sid}"
        elif client.kind == "bearer":
            headers["authorization"] = f"Bearer {client.token}"
        else:
            headers["x-api-key"] = client.token
        record: dict[str, Any] = {"timestamp": when.isoformat(timespec="milliseconds"),
                                  "method": event["method"]}
        query = dict(event["query"])
        if event["method"] == "GET" and event["path"] == "/items" and rng.random() < 0.05:
            query["access_token"] = client.token  # leaked into a URL by an old client
        if rng.random() < 0.3:
            record["url"] = HOST + event["path"] + ("?" + urlencode(query) if query else "")
        else:
            record["path"] = event["path"]
            if query:
                record["query"] = {k: str(v) for k, v in query.items()}
        record["headers"] = headers
        if event["body"] is not None:
            headers["content-type"] = "application/json"
            record["body"] = event["body"]
        record.update(status=event["status"], latency_ms=latency, client_ip=client.ip)
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_log(path: Path, seed: int, count: int = 300) -> None:
    lines = []
    for event, client, when, latency in _events(seed, count, clients=12):
        size = 0 if event["answer"] is None else len(json.dumps(event["answer"]))
        stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
        lines.append(f'{client.ip} - - [{stamp}] "{event["method"]} {_target(event)} HTTP/1.1" '
                     f'{event["status"]} {size} "-" "{client.agent}" {latency / 1000:.3f}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_har(args.out / "inventory.har", args.seed)
    write_jsonl(args.out / "requests.jsonl", args.seed + 10)
    write_log(args.out / "access.log", args.seed + 20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
