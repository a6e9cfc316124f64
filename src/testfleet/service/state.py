"""What every endpoint shares: the store the server owns, the event hub, the run manager and the
security settings. Endpoints reach it as ``request.app.state.service`` (:func:`service_of`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from testfleet.service.hub import EventHub
    from testfleet.store.db import Store

__all__ = ["ServiceState", "service_of"]

#: the largest project archive ``POST /runs`` accepts, by default (``--max-upload-mb``)
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024


@dataclass
class ServiceState:
    store: Store  # the server's own connection: the only writer of the store
    hub: EventHub
    workdir: Path  # workspaces of submitted runs, private stores
    token: str | None = None  # None: no token needed (loopback only)
    max_upload: int = DEFAULT_MAX_UPLOAD
    allowed_origins: tuple[str, ...] = ()  # extra Origins a WebSocket may come from
    runs: Any = None  # the run manager (service.runs.RunManager)
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def reader(self) -> Iterator[Store]:
        """A store for this thread (endpoints run in a thread pool): a cursor on the same database."""
        store = self.store.for_thread()
        try:
            yield store
        finally:
            store.close()


def service_of(connection: HTTPConnection) -> ServiceState:
    state: ServiceState = connection.app.state.service
    return state
