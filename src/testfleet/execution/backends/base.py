"""What a backend is: it starts the collector and the workers and moves messages; nothing more.

The orchestrator, the scheduler and the worker code are shared by every backend (DESIGN.md). A
backend reports what happens as :class:`Event` objects from :meth:`Backend.poll`, so the
orchestrator's loop does not know whether workers are local processes or Ray actors.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Event:
    """One thing that happened in the fleet.

    kinds: ``collected`` (data: the collection payload), ``hello`` (a worker is ready; data: pid),
    ``message`` (data: the worker's protocol message), ``lost`` (the worker's connection ended;
    data: its exit code, negative for a signal, or None when unknown), ``collector_exited``
    (the collector ended before sending its collection; data: exit code).
    """

    kind: str
    worker_id: str | None = None
    data: Any = None


@dataclass(slots=True)
class WorkerInfo:
    worker_id: str
    pid: int | None = None
    said_bye: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """Starts a collector and workers for one run and carries the protocol messages."""

    name = "base"

    @property
    def workers_collect(self) -> bool:
        """True when every worker collects the suite itself (so all can start at once); False when
        workers are made from one collected session (so they start after the collection)."""
        return False

    @abc.abstractmethod
    def start(self) -> None:
        """Start collecting the suite (asynchronously: the result arrives as a ``collected`` event)."""

    @property
    def routes_requirements(self) -> bool:
        """True when workers are made to measure for test requirements (one pool per set of
        requirements); False when every worker is alike and requirements are only checked."""
        return False

    def define_pool(self, key: str, requirements: Any) -> None:
        """Workers spawned for pool ``key`` must meet ``requirements`` (see ``routes_requirements``)."""

    def capabilities(self) -> list[Any]:
        """What the machines workers run on offer (``Capabilities``), to check requirements against."""
        return []

    @abc.abstractmethod
    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        """Start one more worker (for ``pool``); it announces itself with a ``hello`` event."""

    @abc.abstractmethod
    def send(self, worker_id: str, message: tuple) -> bool:
        """Send a protocol message; False when the worker is already gone."""

    @abc.abstractmethod
    def kill(self, worker_id: str, sig: int) -> None:
        """Kill a worker (timeouts, shutdown stragglers)."""

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[Event]:
        """Wait up to ``timeout`` seconds for events and return those that arrived."""

    @abc.abstractmethod
    def collector_output(self) -> str:
        """What the collector and workers printed outside captured tests (diagnostics)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything that is still running and free resources. Idempotent."""
