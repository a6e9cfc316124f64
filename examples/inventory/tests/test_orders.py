"""Placing orders: stock is decremented atomically, never below zero."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import testfleet
from testfleet import Int, Permutation

pytestmark = pytest.mark.orders


@pytest.mark.smoke
def test_order_decrements_stock(client: httpx.Client, item: dict[str, Any]) -> None:
    response = client.post("/orders", json={"item_id": item["id"], "quantity": 4})
    assert response.status_code == 201
    assert response.json()["remaining"] == 6
    assert client.get(f"/items/{item['id']}").json()["quantity"] == 6


@pytest.mark.parametrize(("stock", "ordered"), [(1, 1), (10, 3), (10, 10), (500, 499)])
def test_order_within_stock(client: httpx.Client, make_item: Any, stock: int, ordered: int) -> None:
    it = make_item(quantity=stock)
    response = client.post("/orders", json={"item_id": it["id"], "quantity": ordered})
    assert response.status_code == 201
    assert response.json()["remaining"] == stock - ordered


@pytest.mark.parametrize(("quantity", "price", "total"), [(1, 2.5, 2.5), (3, 0.1, 0.3), (7, 19.99, 139.93)])
def test_order_total(client: httpx.Client, make_item: Any, quantity: int, price: float, total: float) -> None:
    it = make_item(quantity=10, price=price)
    response = client.post("/orders", json={"item_id": it["id"], "quantity": quantity})
    assert response.json()["total"] == pytest.approx(total)


@pytest.mark.parametrize(("stock", "ordered"), [(0, 1), (5, 6), (10, 1000)])
def test_insufficient_stock_is_409(client: httpx.Client, make_item: Any, stock: int, ordered: int) -> None:
    it = make_item(quantity=stock)
    response = client.post("/orders", json={"item_id": it["id"], "quantity": ordered})
    assert response.status_code == 409
    assert response.json() == {"error": "insufficient_stock", "available": stock}
    assert client.get(f"/items/{it['id']}").json()["quantity"] == stock


@pytest.mark.parametrize(
    "payload",
    [{}, {"item_id": 1}, {"item_id": 1, "quantity": 0}, {"item_id": "1", "quantity": 1},
     {"item_id": 1, "quantity": -2}, {"item_id": 1, "quantity": False}],
    ids=["empty", "no-quantity", "zero", "string-id", "negative", "bool"],
)
def test_invalid_order_is_422(client: httpx.Client, payload: dict[str, Any]) -> None:
    response = client.post("/orders", json=payload)
    assert response.status_code == 422


def test_order_for_unknown_item_is_404(client: httpx.Client) -> None:
    assert client.post("/orders", json={"item_id": 999999999, "quantity": 1}).status_code == 404


class TestConcurrentOrders:
    """Many clients ordering the same item at once never oversell it."""

    def test_no_overselling(self, base_url: str, make_item: Any) -> None:
        it = make_item(quantity=20)

        def order(_: int) -> int:
            with httpx.Client(base_url=base_url, timeout=5.0) as c:
                return c.post("/orders", json={"item_id": it["id"], "quantity": 1}).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(order, range(30)))
        assert statuses.count(201) == 20
        assert statuses.count(409) == 10

    def test_stock_reaches_exactly_zero(self, client: httpx.Client, item: dict[str, Any]) -> None:
        for _ in range(item["quantity"]):
            assert client.post("/orders", json={"item_id": item["id"], "quantity": 1}).status_code == 201
        assert client.get(f"/items/{item['id']}").json()["quantity"] == 0
        assert client.post("/orders", json={"item_id": item["id"], "quantity": 1}).status_code == 409


@testfleet.explore(quantity=Int(1, 100_000, default=4), stock=Int(0, 1000, default=10),
                   order=Permutation(["order", "restock", "read"]))
def test_stock_is_what_was_ordered_and_restocked(client: httpx.Client, make_item: Any, quantity: int,
                                                 stock: int, order: list[str]) -> None:
    """Explorable: under plain pytest it runs once with the defaults; ``testfleet run --explore 50
    --ruleset rules.yaml`` varies the quantity, the stock and the order of operations (the rules
    QuantityBoundaries, QuantityScale and OperationOrder apply to it)."""
    it = make_item(quantity=stock)
    expected = stock
    for op in order:
        if op == "order":
            response = client.post("/orders", json={"item_id": it["id"], "quantity": quantity})
            if quantity <= expected:
                assert response.status_code == 201 and response.json()["remaining"] == expected - quantity
                expected -= quantity
            else:
                assert response.status_code == 409 and response.json()["available"] == expected
        elif op == "restock":
            response = client.patch(f"/items/{it['id']}", json={"quantity": expected + 5})
            assert response.status_code == 200
            expected += 5
        else:
            assert client.get(f"/items/{it['id']}").json()["quantity"] == expected
