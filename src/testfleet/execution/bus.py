"""One typed event bus in the coordinator, over which the fleet's parts collaborate.

Replication, hand-off, resource allocation and the anomaly helpers publish typed messages here
(each a frozen dataclass deriving from :class:`BusMessage`) instead of calling each other: a part
that wants to react to another's news subscribes to its message type, and its handler runs at
once, in the same pass of the coordinator's loop (the loop is single-threaded, so there is no
queue to drain and no ordering to guess).

Every published message is kept, in order, with a sequence number and its time, and becomes one
row of the run's ``events`` table (``kind`` = the message's topic, ``bus_seq`` = its sequence
number), so ``testfleet show RUN --events`` can draw the collaboration as a timeline after the
run, from the store alone. On Ray the same rows also go, as they are published, to an actor of
the run's job (:mod:`testfleet.execution.bus_relay`), where its tasks and actors read them live.

The same bus carries the run's progress (:mod:`testfleet.execution.stream`: results, workers,
telemetry samples, lines for the console), which the store feed, the console, the dashboard's
event writer and plugins' listeners subscribe to. Those events are delivered and not kept.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

if TYPE_CHECKING:
    from testfleet.execution.stream import ProgressEvent

__all__ = ["Bus", "BusMessage", "Envelope", "optional", "stored_as"]


def stored_as(key: str) -> Any:
    """A message field kept under another name in its event row: a name Python reserves
    (``class``, ``from``), or one the common fields take (``reason``), that readers of the
    event already use."""
    return dataclasses.field(metadata={"key": key})


def optional() -> Any:
    """A message field left out of its event row when it is None (readers test its presence)."""
    return dataclasses.field(default=None, metadata={"optional": True})


@dataclass(frozen=True, kw_only=True)
class BusMessage:
    """What one part of the fleet tells the others. Subclasses set :attr:`topic` (the event kind
    the message is stored as) and add their own fields, which must be JSON-safe."""

    topic: ClassVar[str] = "bus"
    action: str  # what happened, one word: "replay", "verdict", "start", "grant", "attach", ...
    subject: str  # whom it is about: a worker id, an instance, a nodeid ("" for the fleet)
    reason: str  # one line for a person: what happened and why

    def payload(self) -> dict[str, Any]:
        """The message's own fields beyond the common three, under their stored names."""
        common = {"action", "subject", "reason"}
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in common or (value is None and f.metadata.get("optional")):
                continue
            out[f.metadata.get("key", f.name)] = value
        return out


M = TypeVar("M", bound=BusMessage)
E = TypeVar("E", bound="BusMessage | ProgressEvent")


@dataclass(frozen=True)
class Envelope:
    """A published message, as the bus keeps it."""

    seq: int  # 1, 2, ... in publication order
    t: float  # wall-clock time of publication (seconds since the epoch)
    message: BusMessage

    def to_event(self) -> dict[str, Any]:
        """The row of the ``events`` table the message becomes."""
        m = self.message
        return {**m.payload(), "kind": m.topic, "action": m.action, "subject": m.subject, "message": m.reason,
                "bus_seq": self.seq, "t": self.t}


class Bus:
    """Publish typed messages, deliver them to subscribers at once, keep them all.

    ``sink`` receives each message as an event row (the coordinator passes its recording's
    ``add_events``); ``clock`` gives its time."""

    def __init__(self, sink: Callable[[list[dict[str, Any]]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._clock = clock
        self._handlers: list[tuple[type[Any], Callable[[Any], None]]] = []
        self._routes: dict[type[Any], list[Callable[[Any], None]]] = {}  # a message type -> its handlers
        self._taps: list[Callable[[list[dict[str, Any]]], None]] = []
        self.log: list[Envelope] = []

    def tap(self, sink: Callable[[list[dict[str, Any]]], None]) -> None:
        """Also hand every message's event row to ``sink`` (on Ray, the run's bus actor:
        :mod:`testfleet.execution.bus_relay`), those published so far first."""
        if self.log:
            sink([e.to_event() for e in self.log])
        self._taps.append(sink)

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler`` with every message published from now on that is a ``kind`` (a
        :class:`BusMessage` or a progress event of :mod:`testfleet.execution.stream`)."""
        self._handlers.append((kind, handler))
        self._routes.clear()

    @overload
    def publish(self, message: BusMessage) -> Envelope: ...
    @overload
    def publish(self, message: ProgressEvent) -> None: ...

    def publish(self, message: BusMessage | ProgressEvent) -> Envelope | None:
        """Hand ``message`` to its subscribers, in the order they subscribed; a
        :class:`BusMessage` is also kept and recorded as an event first (a progress event is
        only delivered). A handler may publish in turn; its messages follow this one."""
        envelope = None
        if isinstance(message, BusMessage):
            envelope = Envelope(len(self.log) + 1, self._clock(), message)
            self.log.append(envelope)
            if self._sink is not None:
                self._sink([envelope.to_event()])
            for tap in self._taps:
                tap([envelope.to_event()])
        handlers = self._routes.get(type(message))
        if handlers is None:  # once per message type: which subscriptions it matches
            handlers = self._routes[type(message)] = [h for kind, h in self._handlers if isinstance(message, kind)]
        for handler in handlers:
            handler(message)
        return envelope

    def messages(self, kind: type[M]) -> list[M]:
        """The messages of type ``kind`` published so far, in order."""
        return [e.message for e in self.log if isinstance(e.message, kind)]
