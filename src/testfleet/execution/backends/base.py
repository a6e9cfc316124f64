"""What a backend is: it starts the collector and the workers and moves messages; nothing more.

The orchestrator, the scheduler and the worker code are shared by every backend (DESIGN.md). A
backend reports what happens as :data:`Event` objects (one dataclass per kind) from
:meth:`Backend.poll`, so the orchestrator's loop does not know whether workers are local
processes or Ray actors.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

from testfleet.execution.protocol import Collection, CoordinatorMessage, WorkerMessage


@dataclass(frozen=True, slots=True)
class CollectedEvent:
    """The suite was collected (by the collector, or by one more spawned worker)."""

    collection: Collection
    kind: ClassVar[str] = "collected"


@dataclass(frozen=True, slots=True)
class HelloEvent:
    """A worker connected and is ready for its configuration and work."""

    worker_id: str
    pid: int | None
    kind: ClassVar[str] = "hello"


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A worker's protocol message (a result, a start, a bye...)."""

    worker_id: str
    message: WorkerMessage
    kind: ClassVar[str] = "message"


@dataclass(frozen=True, slots=True)
class LostEvent:
    """The worker's connection ended; ``code``: its exit code, negative for a signal, or None
    when unknown."""

    worker_id: str
    code: int | None
    kind: ClassVar[str] = "lost"


@dataclass(frozen=True, slots=True)
class CollectorExitedEvent:
    """The collector ended before sending its collection."""

    code: int | None
    kind: ClassVar[str] = "collector_exited"


#: One thing that happened in the fleet: a tagged union (match on the class, or read ``kind``).
Event = CollectedEvent | HelloEvent | MessageEvent | LostEvent | CollectorExitedEvent


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
        """Workers spawned for pool ``key`` must meet ``requirements`` (see ``routes_requirements``).
        A backend whose workers are all alike has nothing to do (optional hook, so not abstract)."""
        return None

    def capabilities(self) -> list[Any]:
        """What the machines workers run on offer (``Capabilities``), to check requirements against."""
        return []

    def node_of(self, worker_id: str) -> str | None:
        """The node (machine) the worker runs or ran on, where the backend has several; None for a
        backend whose workers share one machine (optional hook: node quarantine needs it)."""
        return None

    def exclude_node(self, node: str) -> str | None:
        """Place no new worker on ``node`` for the rest of the run. None when done; else why it
        cannot be (the backend has no nodes, or it is the last node that can take workers)."""
        return f"the {self.name} backend does not place workers on nodes"

    @abc.abstractmethod
    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        """Start one more worker (for ``pool``); it announces itself with a ``hello`` event."""

    @abc.abstractmethod
    def send(self, worker_id: str, message: CoordinatorMessage) -> bool:
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
