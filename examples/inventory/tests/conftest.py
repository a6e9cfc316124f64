"""Fixtures: the inventory service (a real subprocess per worker, from ``[tool.testfleet.sut]``)
and items created through its API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture(scope="session")
def base_url(testfleet_instance: Any) -> str:
    """This worker's inventory service: started by testfleet from ``[tool.testfleet.sut]`` in
    pyproject.toml on a free port of 127.0.0.1 (one per worker; one under plain pytest).

    Safe to keep for the session: when exploration restarts the instance with another
    configuration (or after it crashed), testfleet tears down every fixture first and sets them
    up again against the restarted instance, which keeps its port."""
    return str(testfleet_instance.base_url)


@pytest.fixture(scope="session")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5.0) as c:
        yield c


def _create_item(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    payload = {"name": "widget", "quantity": 10, "price": 2.5} | overrides
    response = client.post("/items", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def make_item(client: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Create an item through the API: ``make_item(quantity=3)``; defaults fill the rest."""
    return lambda **overrides: _create_item(client, **overrides)


@pytest.fixture
def item(client: httpx.Client) -> Iterator[dict[str, Any]]:
    """A fresh item with 10 in stock at 2.50, deleted afterwards if the test left it."""
    created = _create_item(client, name="fresh widget")
    yield created
    client.delete(f"/items/{created['id']}")


@pytest.fixture(scope="module")
def catalog(client: httpx.Client) -> Iterator[list[dict[str, Any]]]:
    """Twelve items shared by every test of a module (tests must not modify them)."""
    items = [_create_item(client, name=f"catalog-{n}", quantity=n, price=n * 1.25) for n in range(12)]
    yield items
    for it in items:
        client.delete(f"/items/{it['id']}")
