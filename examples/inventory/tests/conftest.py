"""Fixtures: the inventory service as a real subprocess, and items created through its API."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVICE = Path(__file__).resolve().parent.parent / "inventory_service.py"
START_TIMEOUT_S = 10.0


def _read_port(proc: subprocess.Popen[str], timeout: float) -> int:
    """Read the port from the service's first stdout line, giving up after ``timeout``."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not line or not line[0].strip().isdigit():
        raise RuntimeError(f"inventory service did not print its port (exit code {proc.poll()})")
    return int(line[0])


def _wait_healthy(base_url: str, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"inventory service exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"inventory service at {base_url} was not healthy within {timeout}s")


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """Start the service on a free port of 127.0.0.1 for the whole session, then stop it."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVICE), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{_read_port(proc, START_TIMEOUT_S)}"
        _wait_healthy(url, proc, START_TIMEOUT_S)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


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
