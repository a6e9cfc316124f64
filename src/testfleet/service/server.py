"""Starting a coordinator: the store, the hub, the run manager and the app under uvicorn, either
in the foreground (``testfleet serve``) or in a thread for one run (``testfleet run --dashboard``)."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.errors import UsageError

__all__ = ["Served", "ServerOptions", "serving", "start_state"]


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8642
    store: str | None = None
    token: str | None = None
    max_concurrent_runs: int = 1
    max_upload_mb: int = 64
    allowed_origins: tuple[str, ...] = ()
    run_defaults: tuple[str, ...] = ()  # `testfleet run` options every run gets first (--backend ray ...)


@dataclass
class Served:
    state: Any
    url: str
    token: str | None


def start_state(options: ServerOptions, store_path: str) -> Any:
    """The service state over an opened store (the caller closes it with :func:`stop_state`)."""
    from testfleet.service.hub import EventHub
    from testfleet.service.runs import RunManager
    from testfleet.service.state import ServiceState
    from testfleet.store.db import Store

    store = Store.open(store_path)
    workdir = Path(tempfile.mkdtemp(prefix="testfleet-serve-"))
    state = ServiceState(store=store, hub=EventHub(), workdir=workdir, token=options.token,
                         max_upload=options.max_upload_mb * 1024 * 1024,
                         allowed_origins=options.allowed_origins)
    state.runs = RunManager(state, options.max_concurrent_runs, defaults=list(options.run_defaults))
    return state


def stop_state(state: Any) -> None:
    state.runs.close()
    state.store.close()
    shutil.rmtree(state.workdir, ignore_errors=True)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before uvicorn starts: a port in use is a usage error (4)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", place="--port",
                         expected="a free port on an address of this machine") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def _uvicorn(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="off",
                            ws_ping_interval=20, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve_forever(state: Any, sock: socket.socket) -> None:
    """Serve until Ctrl-C / SIGTERM (uvicorn's own handling), then stop the runs."""
    from testfleet.service.app import create_app

    server = _uvicorn(create_app(state))
    try:
        server.run(sockets=[sock])
    finally:
        stop_state(state)


@contextmanager
def serving(options: ServerOptions, store_path: str) -> Iterator[Served]:
    """A server in a background thread for the length of the ``with`` (``run --dashboard``)."""
    from testfleet.service.app import create_app

    sock = bind(options.host, options.port)
    state = start_state(options, store_path)
    server = _uvicorn(create_app(state))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    host, port = sock.getsockname()[:2]
    try:
        yield Served(state=state, url=url_of(host, port), token=options.token)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        stop_state(state)
        sock.close()
