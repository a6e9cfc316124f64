"""The ledger's API as documented: entries are created, read, changed, deleted and listed; bad
input is refused with a 4xx and never answered with a server error."""

from __future__ import annotations

import string
from concurrent.futures import ThreadPoolExecutor

import httpx

import testfleet
from testfleet import Int, Permutation, String

MEMO_CHARS = string.ascii_letters + string.digits + " .,-'éüñßçø€中文"


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"ok": True}


def test_negative_amount_is_refused(client: httpx.Client) -> None:
    assert client.post("/entries", json={"amount": -5, "memo": "x"}).status_code == 400


@testfleet.explore(amount=Int(-1000, 1_000_000, default=1250), memo=String(0, 160, charset=MEMO_CHARS,
                   default="coffee"), parallel=Int(1, 16, default=1))
def test_create_entries(testfleet_instance, amount: int, memo: str, parallel: int) -> None:
    # `parallel` clients post the same entry at once
    def post(_: int) -> httpx.Response:
        # plain http on localhost: no TLS context (loading the CA bundle costs 40 ms a client)
        with httpx.Client(base_url=testfleet_instance.base_url, timeout=10.0, verify=False) as c:
            return c.post("/entries", json={"amount": amount, "memo": memo})

    with ThreadPoolExecutor(parallel) as pool:
        responses = list(pool.map(post, range(parallel)))
    for r in responses:
        assert r.status_code < 500, r.text
        if amount < 0:
            assert r.status_code == 400, r.text
        else:
            assert r.status_code == 201, r.text
            assert r.json()["memo"] == memo and r.json()["amount"] == amount


@testfleet.explore(order=Permutation(["get", "patch", "delete", "list"]))
def test_entry_lifecycle(client: httpx.Client, order: list[str]) -> None:
    created = client.post("/entries", json={"amount": 500, "memo": "lunch"})
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]
    deleted = False
    for op in order:
        if op == "get":
            r = client.get(f"/entries/{entry_id}")
        elif op == "patch":
            r = client.patch(f"/entries/{entry_id}", json={"memo": "dinner"})
        elif op == "delete":
            r = client.delete(f"/entries/{entry_id}")
        else:
            r = client.get("/entries", params={"page": 0})
        assert r.status_code < 500, f"{op}: {r.text}"
        if op in ("get", "patch") and deleted:
            assert r.status_code == 404, f"{op} after delete: {r.text}"
        deleted = deleted or op == "delete"
