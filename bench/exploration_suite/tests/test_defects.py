"""One explorable test that can meet all three planted defects of the inventory example
(``examples/inventory/inventory_service.py``, "Planted defects"):

- ``load``: percent of two cores the service burns for ``LOAD_SECONDS`` (``POST /load``) while
  the test runs; ``payload_size``: an upload sent ``UPLOAD_AFTER`` seconds into that load
  (defect:payload-under-load needs a large upload while the service really is busy);
- ``order``: what happens to a freshly created item, in this order (defect:order: an update
  right after the delete);
- ``cache`` and ``threads``: a configuration put to the service (defect:config-pair).

The test fails with a message naming every defect it met. ``bench/exploration.py`` calls
:func:`exercise` directly too (uniform random and Hypothesis), so all three methods use the same
oracle against the same kind of service. With ``EXPLORATION_BENCH_STOP`` set to a file, the defects
met are appended to it and, once all three are there, the test returns at once: executions after
that enter no figure, so they need not cost a load burn.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

import testfleet
from testfleet import Choice, Int, Permutation

DEFECTS = ("payload-under-load", "order", "config-pair")
OPS = ["read", "update", "order", "list", "delete"]
LOAD_SECONDS = 0.12
UPLOAD_AFTER = 0.09


def exercise(base_url: str, payload_size: int, order: list[str], cache: str, threads: int,
             load: int) -> list[str]:
    """Run one point against the service; the planted defects it met (``defect:`` dropped)."""
    met: set[str] = set()

    def check(response: httpx.Response) -> None:
        if response.status_code == 500:
            error = str(response.json().get("error", ""))
            met.add(error.removeprefix("defect:"))

    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        start = time.monotonic()
        if load > 0:
            client.post("/load", json={"percent": load, "seconds": LOAD_SECONDS})
        item = client.post("/items", json={"name": "bench", "quantity": 5, "price": 1.5}).json()
        for op in order:
            if op == "read":
                check(client.get(f"/items/{item['id']}"))
            elif op == "update":
                check(client.patch(f"/items/{item['id']}", json={"quantity": 7}))
            elif op == "order":
                check(client.post("/orders", json={"item_id": item["id"], "quantity": 1}))
            elif op == "list":
                check(client.get("/items", params={"limit": 5}))
            elif op == "delete":
                check(client.delete(f"/items/{item['id']}"))
        check(client.put("/config", json={"cache": cache, "threads": threads}))
        if load > 0:
            time.sleep(max(0.0, start + UPLOAD_AFTER - time.monotonic()))
        check(client.post("/uploads", json={"payload": "x" * payload_size}))
        if load > 0:  # let the burn end inside this test, not in the next one
            time.sleep(max(0.0, start + LOAD_SECONDS + 0.005 - time.monotonic()))
    return sorted(met)


def _stop_file() -> Path | None:
    name = os.environ.get("EXPLORATION_BENCH_STOP")
    return Path(name) if name else None


@testfleet.explore(payload_size=Int(0, 1000), order=Permutation(OPS),
                   cache=Choice(["off", "lru", "lfu"]), threads=Int(1, 16), load=Int(0, 100))
def test_inventory_defects(base_url: str, payload_size: int, order: list[str], cache: str,
                           threads: int, load: int) -> None:
    stop = _stop_file()
    if stop is not None and stop.exists() and set(stop.read_text().split()) >= set(DEFECTS):
        return
    met = exercise(base_url, payload_size, order, cache, threads, load)
    if stop is not None and met:
        with stop.open("a") as out:
            out.write("\n".join(met) + "\n")
    assert not met, "planted defects: " + ", ".join(f"defect:{name}" for name in met)
