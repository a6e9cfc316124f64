"""A seeded, realistic-looking capture of inventory-service traffic (the bundled example's API),
for tests, benchmarks and demos when no real capture is at hand.

``synthetic_capture(n, seed)`` returns about ``n`` :class:`CapturedRequest` records in sessions
(browse -> look at an item -> order or change it; or create an item and look at it), with
skewed categorical values, long-tailed numbers, optional fields and string shapes:

- ``POST /items`` ``{name, sku, quantity, price, category, tags?}``
- ``GET /items?limit=&offset=`` (offset optional), ``GET|PATCH|DELETE /items/{id}``
- ``POST /orders`` ``{item_id, quantity, email, created_at, note?}``
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from testfleet.generation.records import CapturedRequest

__all__ = ["synthetic_capture"]

_ADJECTIVES = ["Red", "Blue", "Small", "Large", "Steel", "Wooden", "Smart", "Classic", "Mini", "Ultra"]
_NOUNS = ["Widget", "Gadget", "Bolt", "Hammer", "Lamp", "Chair", "Cable", "Sensor", "Valve", "Box"]
_CATEGORIES = (["tools", "hardware", "electrical", "garden", "office"], [0.4, 0.25, 0.2, 0.1, 0.05])
_TAGS = ["new", "sale", "eco", "bulk", "fragile", "imported", "premium", "clearance"]
_LIMITS = ([10, 20, 50, 100], [0.5, 0.3, 0.15, 0.05])
_JSON = {"content-type": "application/json", "accept": "application/json"}
_FLOWS = [
    (0.45, ["GET /items", "GET /items/{id}", "POST /orders"]),
    (0.2, ["GET /items", "GET /items", "GET /items/{id}"]),
    (0.15, ["POST /items", "GET /items/{id}"]),
    (0.1, ["GET /items/{id}", "PATCH /items/{id}", "GET /items/{id}"]),
    (0.1, ["GET /items", "GET /items/{id}", "DELETE /items/{id}"]),
]


class _Maker:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, values: list, p: list[float] | None = None):
        return values[int(self.rng.choice(len(values), p=p))]

    def item_id(self) -> int:
        return int(min(5000, 1 + self.rng.geometric(1 / 400)))

    def price(self) -> float:
        return round(float(np.clip(self.rng.lognormal(3.0, 0.8), 0.5, 2000.0)), 2)

    def quantity(self) -> int:
        return int(min(500, self.rng.geometric(1 / 12)))

    def request(self, endpoint: str, at: float, session: str, line: int) -> CapturedRequest:
        method, template = endpoint.split(" ", 1)
        params: dict[str, str] = {}
        query: dict[str, list[str]] = {}
        body = None
        if "{id}" in template:
            params["id"] = str(self.item_id())
        if endpoint == "GET /items":
            limit = self.pick(*_LIMITS)
            query["limit"] = [str(limit)]
            if self.rng.random() < 0.7:
                query["offset"] = [str(limit * int(self.rng.integers(0, 20)))]
        elif endpoint == "POST /items":
            name = f"{self.pick(_ADJECTIVES)} {self.pick(_NOUNS)}"
            if self.rng.random() < 0.3:
                name += f" {int(self.rng.integers(1, 1000))}"
            sku = "".join(chr(65 + int(c)) for c in self.rng.integers(0, 26, 3)) + \
                f"-{int(self.rng.integers(0, 10000)):04d}"
            body = {"name": name, "sku": sku, "quantity": self.quantity(), "price": self.price(),
                    "category": self.pick(*_CATEGORIES)}
            if self.rng.random() < 0.6:
                k = int(self.rng.choice(4, p=[0.2, 0.45, 0.25, 0.1]))
                body["tags"] = [self.pick(_TAGS) for _ in range(k)]
        elif endpoint == "PATCH /items/{id}":
            body = {}
            if self.rng.random() < 0.7:
                body["quantity"] = self.quantity()
            if not body or self.rng.random() < 0.4:
                body["price"] = self.price()
        elif endpoint == "POST /orders":
            user = "".join(chr(97 + int(c)) for c in self.rng.integers(0, 26, int(self.rng.integers(3, 9))))
            stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {"item_id": self.item_id(), "quantity": int(min(50, self.rng.geometric(0.4))),
                    "email": f"{user}@{self.pick(['example.com', 'mail.org', 'shop.net'])}",
                    "created_at": stamp}
            if self.rng.random() < 0.15:
                body["note"] = self.pick(["gift", "urgent", "leave at door", "call first"])
        path = template.replace("{id}", params["id"]) if params else template
        headers = dict(_JSON) if body is not None else {"accept": "application/json"}
        return CapturedRequest(method=method, path=path, template=template, path_params=params,
                               query=query, headers=headers, body=body,
                               body_kind="json" if body is not None else "none", status=200,
                               latency_ms=round(float(self.rng.gamma(2.0, 6.0)), 2), session=session,
                               timestamp=at, source=f"synthetic:{line}")


def synthetic_capture(n: int = 2000, seed: int = 0) -> list[CapturedRequest]:
    """About ``n`` requests (whole sessions, so possibly a few more), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    maker = _Maker(rng)
    weights = [w for w, _ in _FLOWS]
    out: list[CapturedRequest] = []
    at = 1_717_200_000.0
    session = 0
    while len(out) < n:
        flow = _FLOWS[int(rng.choice(len(_FLOWS), p=weights))][1]
        session += 1
        key = f"s{session}"
        for endpoint in flow:
            at += float(rng.exponential(2.0))
            out.append(maker.request(endpoint, at, key, len(out) + 1))
    return out
