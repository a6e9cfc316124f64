"""The event WebSockets' own lifetime: a client that leaves is let go at once, and an unknown
run is refused with a reason a browser can read."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service.conftest import served_on_loopback
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from testfleet.service.app import create_app
from testfleet.service.hub import EventHub
from testfleet.service.runs import RunManager
from testfleet.service.state import ServiceState
from testfleet.store.db import Store


def _app(tmp_path: Path) -> tuple[TestClient, EventHub, Store]:
    store = Store.open(tmp_path / "s.duckdb")
    state = ServiceState(store=store, hub=EventHub(), workdir=tmp_path / "work")
    state.runs = RunManager(state)
    return TestClient(create_app(state)), state.hub, store


def test_a_listener_that_leaves_while_nothing_comes_is_let_go(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.duckdb")
    state = ServiceState(store=store, hub=EventHub(), workdir=tmp_path / "work")
    state.runs = RunManager(state)
    hub = state.hub
    with served_on_loopback(create_app(state)) as url:
        with connect(url.replace("http", "ws", 1) + "/ws/events", proxy=None):
            assert _within(30, lambda: len(hub._subscribers) == 1)  # subscribed once accepted
        # gone without any event having been published to notice it by
        assert _within(30, lambda: not hub._subscribers)
    store.close()


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_an_unknown_run_is_refused_with_code_4404_and_a_reason(tmp_path: Path) -> None:
    client, _hub, store = _app(tmp_path)
    with client, client.websocket_connect("/ws/runs/no-such-run") as websocket, \
            pytest.raises(WebSocketDisconnect) as refused:
        websocket.receive_text()
    assert refused.value.code == 4404 and "no-such-run" in refused.value.reason
    store.close()
