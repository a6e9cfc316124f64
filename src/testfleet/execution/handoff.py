"""Hand-off of stragglers: when a test has run far past its history, a copy of it starts elsewhere.

As MapReduce's backup tasks: once nothing is queued, a worker left idle takes a *speculative
copy* of a test that another worker has been running for much longer than its history says it
needs. The first result of the two wins; the other execution is cancelled (its worker is killed
and replaced, the way a timeout ends one), so every case keeps exactly one result per attempt in
the store and the reports. This module holds the decisions, free of processes and clocks (the
coordinator's part, :mod:`testfleet.execution.coordinator.handing`, applies them), and the
summary line.

``[tool.testfleet.handoff]``: ``enabled``, ``factor`` and ``min_extra`` say when a test is a
straggler (``elapsed > max(factor × historical, historical + min_extra)``; a test without history
never is); ``autoscale_wait`` is how long a Ray run waits for a node that meets a test's
requirements (asked of Ray's autoscaler) before it is skipped, 0 by default (skipped at once).

Every step is a message on the coordinator's bus (:mod:`testfleet.execution.bus`), topic
``handoff``: :class:`CopyStarted`, :class:`CopyDecided` and :class:`CapacityAwaited`; each
becomes a ``handoff`` event row with the fields the summary and ``bench/collaboration.py`` read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testfleet.execution.bus import BusMessage


class HandoffSettings(BaseModel):
    """``[tool.testfleet.handoff]``: speculative copies of stragglers, and waiting for capacity."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(default=True, description="start a speculative copy of a straggler on an idle "
                          "worker once nothing is queued")
    factor: float = Field(default=3.0, gt=1, description="a test is a straggler after this many times its "
                          "historical (median) duration ...")
    min_extra: float = Field(default=2.0, ge=0, description="... and at least this many seconds past it")
    # 0 by default: a cluster without an autoscaler (most) would make every such run wait for nothing
    autoscale_wait: float = Field(default=0.0, ge=0, description="seconds a Ray run waits for a node that "
                                  "meets a test's requirements (asked of the autoscaler) before skipping it; "
                                  "0: skip at once")


@dataclass(frozen=True, slots=True)
class Running:
    """A test some worker is running now, as the coordinator sees it."""

    worker: str
    index: int
    nodeid: str
    started: float  # monotonic seconds
    pool: str = ""


def overdue_after(historical: float, settings: HandoffSettings) -> float:
    """Seconds after which a test with this historical duration is a straggler."""
    return max(settings.factor * historical, historical + settings.min_extra)


def stragglers(running: Iterable[Running], history: Mapping[str, float], now: float,
               settings: HandoffSettings, copied: Iterable[int] = ()) -> list[Running]:
    """The tests to copy, most overdue first: past ``overdue_after`` their history, never copied
    before (one copy per test), and with a history at all (nothing else says "far past")."""
    done = set(copied)
    late: list[tuple[float, Running]] = []
    for test in running:
        historical = history.get(test.nodeid)
        if historical is None or test.index in done:
            continue
        over = (now - test.started) - overdue_after(historical, settings)
        if over > 0:
            late.append((over, test))
    late.sort(key=lambda pair: -pair[0])
    return [test for _, test in late]


def next_check(running: Iterable[Running], history: Mapping[str, float], now: float,
               settings: HandoffSettings, copied: Iterable[int] = ()) -> float | None:
    """Seconds until the next running test becomes a straggler (None: none will). One that
    already is does not count: it is copied when a worker falls idle, which an event says."""
    done = set(copied)
    waits = [wait for test in running if test.nodeid in history and test.index not in done
             if (wait := test.started + overdue_after(history[test.nodeid], settings) - now) > 0]
    return min(waits) if waits else None


@dataclass(slots=True)
class Copy:
    """A straggler and its speculative copy, from start to verdict."""

    index: int
    nodeid: str
    original: str  # worker ids
    copy: str
    original_started: float  # monotonic
    copy_started: float
    historical: float
    winner: str | None = None

    @property
    def loser(self) -> str | None:
        if self.winner is None:
            return None
        return self.copy if self.winner == self.original else self.original

    def decide(self, worker: str) -> str:
        """The first result came from ``worker``: it wins; returns the loser to cancel."""
        self.winner = worker
        return self.copy if worker == self.original else self.original


# -- the messages on the bus ------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _CopyMessage(BusMessage):
    """What every message about one copied test says (``subject``: its nodeid)."""

    topic = "handoff"
    case_id: str
    variant_id: str
    nodeid: str
    worker: str  # the worker the message is about (starting: the one running the copy)
    original: str
    copy: str
    historical_s: float


@dataclass(frozen=True, kw_only=True)
class CopyStarted(_CopyMessage):
    """A straggler got a speculative copy."""

    action: str = "start"
    elapsed_s: float  # how long the original had run when the copy started


@dataclass(frozen=True, kw_only=True)
class CopyDecided(_CopyMessage):
    """The first result of a copied test came: ``winner`` keeps it, ``loser`` is cancelled."""

    action: str = "result"
    winner: str
    loser: str
    winner_origin: str  # "speculative" (the copy won) or "original"
    outcome: str
    attempt: int
    original_ran_s: float
    copy_ran_s: float


@dataclass(frozen=True, kw_only=True)
class CapacityAwaited(BusMessage):
    """Tests no worker could run waited for a node that meets them (Ray's autoscaler)."""

    topic = "handoff"
    action: str = "capacity"
    subject: str = ""  # the fleet
    worker: str = "scheduler"
    requested: list[str]
    waited_s: float
    met: list[str]
    unmet: list[str]


def summary(events: Iterable[Mapping[str, Any]]) -> str | None:
    """One line for the end of a run, e.g. "2 stragglers handed off; the copy won 1 (its original
    had run 14.2 s without a result)".

    What a winning copy saved cannot be measured in the run that cancelled the original (it never
    finished); what is known is how long the cancelled originals had run without a result, which
    is what the line says. ``bench/collaboration.py --part handoff`` measures the saving."""
    handoffs = [e for e in events if e.get("kind") == "handoff"]
    started = [e for e in handoffs if e.get("action") == "start"]
    if not started:
        return None
    results = [e for e in handoffs if e.get("action") == "result"]
    won = [e for e in results if e.get("winner_origin") == "speculative"]
    text = f"{len(started)} straggler{'s' if len(started) != 1 else ''} handed off; the copy won {len(won)}"
    if won:
        ran = sum(float(e.get("original_ran_s") or 0.0) for e in won)
        text += f" ({'its original' if len(won) == 1 else 'their originals'} had run {ran:.1f} s without a result)"
    undecided = len(started) - len(results)
    if undecided:
        text += f"; {undecided} undecided when the run ended"
    return text
