"""What the dashboard's browser tests share: a headless Chromium driven by Playwright, and a
harness server (the page's router, plus WebSocket routes streaming an :class:`EventHub` the test
publishes into, over real HTTP on 127.0.0.1) so a test decides exactly which events the page
gets and when, and can drop every connection to exercise the page's reconnect; and a real
``testfleet serve`` process that real ``testfleet submit`` processes send runs to.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from service_core.conftest import Server, start_server

from testfleet.service import pages
from testfleet.service.errors import install_error_handlers
from testfleet.service.hub import Event, EventHub

pytest.importorskip("playwright.sync_api")

LIST_KINDS = ("run", "collected", "end")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Harness:
    """The page's router and the two WebSocket routes over a hub, served by uvicorn in a thread."""

    def __init__(self) -> None:
        self.hub = EventHub()
        self.sockets: set[WebSocket] = set()
        self.connects = 0  # WebSocket connections accepted so far (the page's reconnects count)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = FastAPI()
        install_error_handlers(self.app)
        self.app.include_router(pages.router)
        self.app.add_api_websocket_route("/ws/runs/{run_id}", self._run_stream)
        self.app.add_api_websocket_route("/ws/events", self._list_stream)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _stream(self, websocket: WebSocket, accept: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await websocket.accept()
        self.connects += 1
        self.sockets.add(websocket)
        after = int(websocket.query_params.get("after", "0"))
        subscription = self.hub.subscribe(after, accept)

        async def pump() -> None:
            while True:
                for event in await subscription.next_events():
                    await websocket.send_json(event)

        sender = asyncio.create_task(pump())
        try:  # until the page goes away: its close is what ends the wait on the hub
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            subscription.close()
            self.sockets.discard(websocket)

    async def _run_stream(self, websocket: WebSocket, run_id: str) -> None:
        await self._stream(websocket, lambda e: e.get("run_id") == run_id)

    async def _list_stream(self, websocket: WebSocket) -> None:
        await self._stream(websocket, lambda e: e["kind"] in LIST_KINDS)

    def drop_connections(self) -> int:
        """Close every open WebSocket from the server's side (as a restarting proxy would)."""
        assert self.loop is not None
        sockets = list(self.sockets)

        async def close_all() -> None:
            for websocket in sockets:
                try:
                    await websocket.close(code=1012)
                except RuntimeError:
                    pass

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=10)
        return len(sockets)

    def __enter__(self) -> Harness:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the harness server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class RunFeed:
    """Publishes one run's events as a ``testfleet run`` child would make them."""

    hub: EventHub
    run_id: str
    total: int = 0
    done: int = 0
    published: list[Event] = field(default_factory=list)

    def emit(self, kind: str, **fields: Any) -> Event:
        event = self.hub.publish({"run_id": self.run_id, "kind": kind, "t": time.time(), **fields})
        self.published.append(event)
        return event

    def start(self, total: int, workers: int = 2) -> None:
        self.total = total
        self.emit("run", status="running", argv=["tests", "-n", str(workers)], paths={})
        self.emit("collected", total=total, deselected=0, workers=workers)
        for worker in range(workers):
            self.emit("worker", worker=worker, state="started", detail="local")

    def result(self, nodeid: str, outcome: str = "passed", *, worker: int = 0, flaky: bool = False,
               final: bool = True, attempt: int = 1, longrepr: str | None = None,
               origin: str = "baseline") -> Event:
        self.emit("running", worker=worker, nodeid=nodeid)
        if final:
            self.done += 1
        fields: dict[str, Any] = dict(nodeid=nodeid, outcome=outcome, attempt=attempt, final=final,
                                      flaky=flaky, worker=worker, duration=0.01, message="",
                                      origin=origin, done=self.done, total=self.total)
        if longrepr is not None:
            fields["longrepr"] = longrepr
            fields["message"] = longrepr.splitlines()[-1]
        event = self.emit("result", **fields)
        self.emit("running", worker=worker, nodeid=None)
        return event

    def end(self, exit_code: int) -> None:
        self.emit("end", exit_code=exit_code)
        self.emit("run", status="finished", exit_code=exit_code)


@pytest.fixture
def harness() -> Iterator[Harness]:
    with Harness() as running:
        yield running


# module scope: Playwright's sync API keeps an event loop running in this thread until it stops,
# and asyncio.run() in another file's test on the same worker would refuse to start
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from browser import chromium
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        pytest.skip("no Chrome/Chromium binary and no apt-get as root to install one")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


# ---------------------------------------------------------------- a real `testfleet serve`

@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    """A real ``testfleet serve`` (the service tests' own, see tests/service_core/conftest.py)."""
    running = start_server(tmp_path)
    try:
        yield running
    finally:
        running.stop()
