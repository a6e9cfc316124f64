"""What resilience tells the fleet's bus: breakers changing state, recovery levels taken, faults injected.

These are the coordinator's reactions to trouble (:mod:`testfleet.execution.coordinator.recovering`)
and the trouble it was given on purpose (:mod:`testfleet.execution.chaos.injector`), published on the
bus (:mod:`testfleet.execution.bus`) beside replication and hand-off, so that the run's timeline
(``testfleet show RUN --events``) shows a fault, the breaker it opened, and the work handed on, in
order. Each becomes an event row of the kind readers have always selected (``breaker``,
``recovery``, ``fault``) with the same fields; a failure blamed on an injected network error is an
``injected_failure`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testfleet.execution.bus import BusMessage, optional, stored_as

__all__ = ["BreakerChanged", "FaultInjected", "InjectedFailure", "RecoveryTaken"]


@dataclass(frozen=True, kw_only=True)
class BreakerChanged(BusMessage):
    """A breaker changed state (``action``: the new state; ``subject``: the seat, instance or endpoint)."""

    topic = "breaker"
    case_id: str = ""
    variant_id: str | None = None
    nodeid: str = ""
    worker: str
    scope: str  # "worker", "instance" or "endpoint"
    target: str
    old: str = stored_as("from")
    new: str = stored_as("to")
    cause: str = stored_as("reason")  # why it changed (the message is the line for a person)
    moved: int  # tests handed back to the queue because it opened


@dataclass(frozen=True, kw_only=True)
class RecoveryTaken(BusMessage):
    """A level of escalating recovery was taken (``action``: the level's name)."""

    topic = "recovery"
    case_id: str = ""
    variant_id: str | None = None
    nodeid: str = ""
    level: int
    target: str
    cause: str = stored_as("reason")


@dataclass(frozen=True, kw_only=True)
class FaultInjected(BusMessage):
    """A chaos fault, carried out (``action`` ``inject``) or not (``skip``, with ``skipped``)."""

    topic = "fault"
    worker: str
    fault: str
    target: str
    at: float  # epoch seconds: recovery_time measures from here
    duration: float
    params: dict[str, Any]
    schedule: str
    late: float | None = optional()  # seconds it waited for a worker that could take it
    skipped: str | None = optional()  # why it was not injected


@dataclass(frozen=True, kw_only=True)
class InjectedFailure(BusMessage):
    """A failed attempt judged an infrastructure error because the chaos proxy failed its requests
    on purpose while it ran (:mod:`testfleet.execution.chaos.blame`); ``action`` ``infrastructure``."""

    topic = "injected_failure"
    case_id: str
    variant_id: str | None = None
    nodeid: str
    worker: str
    attempt: int
    outcome: str  # the attempt's own outcome (failed, error)
    fault: str  # the toxic that failed its requests
    injected: dict[str, int]  # its requests failed on purpose, per toxic
    target: str | None = optional()  # the worker the matching window was aimed at
    window_at: float | None = optional()  # epoch seconds the matching window began
