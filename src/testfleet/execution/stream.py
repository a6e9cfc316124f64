"""The run's progress as typed events on the coordinator's one stream (:class:`~.bus.Bus`).

The coordinator's parts never call the console, the store or the dashboard. They publish what
happened as one of the frozen dataclasses below, on the same bus that carries the fleet's
collaboration news (:class:`~.bus.BusMessage`), and whoever needs it subscribes:

* the store feed (:mod:`.coordinator.storing`) to :class:`ResultArrived`, :class:`SeriesSampled`
  and :class:`EventsRaised`, which it batches to the run's :class:`~.plan.Recorder`;
* every :class:`~.plan.Listener` (the console, the service's event writer for the dashboard,
  plugins' listeners) through :func:`listen`, which turns each event into the listener's method.

Unlike a :class:`~.bus.BusMessage`, a progress event is delivered and not kept: the store holds
its result or sample already, and the bus's log stays the collaboration's timeline. ``Listener``
stays the interface that plugins implement (``testfleet_run_listener``); :func:`listen` is the
one place that knows how the stream maps onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testfleet.execution.bus import Bus
    from testfleet.execution.plan import Listener
    from testfleet.execution.protocol import Series
    from testfleet.model import Result

__all__ = ["Collected", "EventsRaised", "ExploringStarted", "ProgressEvent", "ResultArrived", "Said",
           "SeriesSampled", "TerminalOptions", "TestStarted", "WorkerChanged", "listen"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """What the run did, for whoever watches it: delivered to subscribers, never kept."""


@dataclass(frozen=True, slots=True)
class TerminalOptions(ProgressEvent):
    options: dict[str, Any]  # -r, -q ... as the collecting pytest saw them


@dataclass(frozen=True, slots=True)
class Collected(ProgressEvent):
    total: int
    deselected: int
    workers: int


@dataclass(frozen=True, slots=True)
class TestStarted(ProgressEvent):
    __test__ = False  # a name pytest would otherwise collect

    worker: str
    nodeid: str | None  # None: the worker holds no test now


@dataclass(frozen=True, slots=True)
class ResultArrived(ProgressEvent):
    result: Result
    done: int  # final results so far
    total: int
    #: whether the result counts in the run's progress: a replay (evidence about another
    #: execution) and a result decided without running (an unmet requirement) are only stored
    progress: bool = True


@dataclass(frozen=True, slots=True)
class Said(ProgressEvent):
    text: str  # one line for the person watching


@dataclass(frozen=True, slots=True)
class ExploringStarted(ProgressEvent):
    budget: str


@dataclass(frozen=True, slots=True)
class WorkerChanged(ProgressEvent):
    worker: str
    state: str  # "started", "lost", "breaker open", ...
    detail: str


@dataclass(frozen=True, slots=True)
class SeriesSampled(ProgressEvent):
    worker: str
    columns: Series  # telemetry samples as columns: t, metric, value


@dataclass(frozen=True, slots=True)
class EventsRaised(ProgressEvent):
    """Rows for the run's ``events`` table that are not bus messages (anomalies, rule accounts)."""

    events: list[dict[str, Any]]


def listen(bus: Bus, listener: Listener) -> None:
    """Subscribe ``listener`` to the stream: each progress event becomes its method call."""
    terminal = getattr(listener, "on_terminal", None)  # optional: only the console reads it

    def tell(event: ProgressEvent) -> None:
        match event:
            case ResultArrived(result=result, done=done, total=total, progress=True):
                listener.on_result(result, done, total)
            case TestStarted(worker=worker, nodeid=nodeid):
                listener.on_running(worker, nodeid)
            case SeriesSampled(worker=worker, columns=columns):
                listener.on_series(worker, columns)
            case Said(text=text):
                listener.on_message(text)
            case WorkerChanged(worker=worker, state=state, detail=detail):
                listener.on_worker(worker, state, detail)
            case Collected(total=total, deselected=deselected, workers=workers):
                listener.on_collected(total, deselected, workers)
            case ExploringStarted(budget=budget):
                listener.on_exploring(budget)
            case TerminalOptions(options=options) if terminal is not None:
                terminal(options)

    bus.subscribe(ProgressEvent, tell)
