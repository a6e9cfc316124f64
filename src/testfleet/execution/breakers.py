"""Circuit breakers: stop sending work where infrastructure keeps failing, probe, and resume.

One :class:`CircuitBreaker` guards one target: a worker's seat (the place a worker runs; its
replacements take the same seat, so a seat that keeps crashing is seen as one), a SUT instance, or
an HTTP endpoint (``METHOD /path/template`` of a scenario step). It counts only *infrastructure*
errors (:func:`is_infrastructure`: a crash, a timeout, a SUT that was not ready or crashed, a
refused connection); a test's assertion failure is the test's business and counts as a success
of the infrastructure.

States (as in Nygard's *Release It!*): ``closed`` (work flows), ``open`` (no work; after
``cooldown`` seconds it turns ``half_open``), ``half_open`` (``half_open_probes`` tests are sent:
all succeed -> ``closed``, one fails -> ``open`` again). A closed breaker opens when
``consecutive_errors`` infrastructure errors come in a row, or when at least ``min_calls`` results
of the last ``window`` seconds are in and their share of infrastructure errors reaches
``failure_ratio``. Time is a callable (``clock``), so tests drive it without sleeping.

Settings: ``[tool.testfleet.breakers]`` (:class:`BreakerSettings`).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testfleet.model import Outcome

State = Literal["closed", "open", "half_open"]
Scope = Literal["worker", "instance", "endpoint"]


class BreakerSettings(BaseModel):
    """``[tool.testfleet.breakers]``: the thresholds of every breaker of a run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(default=True, description="breakers and escalating recovery on (false: testfleet's "
                          "plain crash retry and worker replacement)")
    failure_ratio: float = Field(default=0.5, gt=0, le=1, description="share of infrastructure errors over "
                                 "the window that opens a breaker")
    window: float = Field(default=60.0, gt=0, description="seconds of results the failure ratio is taken over")
    min_calls: int = Field(default=10, ge=1, description="results in the window before the ratio is judged")
    consecutive_errors: int = Field(default=5, ge=1, description="infrastructure errors in a row that open "
                                    "a breaker")
    cooldown: float = Field(default=10.0, ge=0, description="seconds a breaker stays open before it probes")
    half_open_probes: int = Field(default=1, ge=1, description="tests sent through a half-open breaker")
    quarantine_after: int = Field(default=3, ge=1, description="openings of a worker's breaker before its "
                                  "seat is quarantined for the rest of the run")


# -- what counts ------------------------------------------------------------------------------
_INFRA_OUTCOMES = frozenset({Outcome.crashed, Outcome.timeout})
# transport-level failures to reach the SUT, whichever client said it (stdlib, httpx, aiohttp,
# requests/urllib3; httpx words a reset "ReadError: [Errno 104] Connection reset by peer"), and the
# SUT's own death or failed start as testfleet's fixture reports it
_INFRA_MESSAGE = re.compile(
    r"ConnectionRefusedError|Connection refused|ConnectError|ClientConnectorError|"
    r"NewConnectionError|ConnectTimeout|ServerDisconnectedError|RemoteProtocolError|"
    r"ConnectionResetError|Connection reset by peer|"
    r"the system under test (?:crashed|did not start)|SUT instance .* not ready",
    re.IGNORECASE)


def is_infrastructure(outcome: Outcome | str, message: str | None) -> bool:
    """True for a result the infrastructure caused: a crash, a timeout, a refused connection, a
    SUT that died or never became ready. A failed assertion is not one."""
    outcome = Outcome(outcome)
    if outcome in _INFRA_OUTCOMES:
        return True
    if outcome not in (Outcome.failed, Outcome.error):
        return False
    return bool(message) and _INFRA_MESSAGE.search(message or "") is not None


def infra_kind(outcome: Outcome | str, message: str | None) -> str:
    """A short word for an infrastructure error, for the console: crash, timeout, refused, sut."""
    outcome = Outcome(outcome)
    if outcome is Outcome.crashed:
        return "crash"
    if outcome is Outcome.timeout:
        return "timeout"
    if message and re.search(r"system under test|SUT instance", message):
        return "SUT failure"
    return "connection error"


# -- the state machine -----------------------------------------------------------------------
@dataclass
class Transition:
    """One change of a breaker's state, with why (shown on the console and stored as an event)."""

    scope: Scope
    target: str
    old: State
    new: State
    reason: str
    at: float


@dataclass
class CircuitBreaker:
    scope: Scope
    target: str
    settings: BreakerSettings
    clock: Callable[[], float] = time.monotonic
    state: State = "closed"
    opened_at: float | None = None
    openings: int = 0
    consecutive: int = 0
    streak_since: float = 0.0  # when the current run of consecutive errors began
    probes_sent: int = 0
    probes_passed: int = 0
    #: (when, infrastructure error?) for the results of the last ``window`` seconds
    calls: deque[tuple[float, bool]] = field(default_factory=deque)
    errors: int = 0  # infrastructure errors among ``calls`` (kept as they come and go, not recounted)
    last_kind: str = "infrastructure error"

    def poll(self) -> Transition | None:
        """Open -> half-open once the cool-down is over (called as time passes)."""
        if self.state == "open" and self.opened_at is not None \
                and self.clock() - self.opened_at >= self.settings.cooldown:
            return self._move("half_open", f"cool-down of {self.settings.cooldown:g} s over; probing "
                              f"with {self.settings.half_open_probes} test"
                              f"{'s' if self.settings.half_open_probes != 1 else ''}")
        return None

    def remaining(self) -> float | None:
        """Seconds until an open breaker probes; None unless open."""
        if self.state != "open" or self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.settings.cooldown - self.clock())

    def admits(self) -> int | None:
        """How many more tests may go through now: None (no limit: closed), 0 (open, or every
        probe sent), or the half-open probes left."""
        self.poll()
        if self.state == "closed":
            return None
        if self.state == "open":
            return 0
        return max(0, self.settings.half_open_probes - self.probes_sent)

    def hold_open(self) -> None:
        """Open for good (its target is quarantined): it never probes again."""
        self.state, self.opened_at = "open", None

    def sent_probe(self) -> None:
        if self.state == "half_open":
            self.probes_sent += 1

    def record(self, infrastructure: bool, kind: str = "infrastructure error") -> Transition | None:
        """One result through this breaker; the transition it caused, if any."""
        now = self.clock()
        if infrastructure:
            self.last_kind = kind
        if self.state == "half_open":
            if infrastructure:
                return self._open(f"the probe failed ({kind})")
            self.probes_passed += 1
            if self.probes_passed >= self.settings.half_open_probes:
                return self._move("closed", f"{self.probes_passed} probe"
                                  f"{'s' if self.probes_passed != 1 else ''} passed")
            return None
        if self.state == "open":
            return None  # a result of work sent before it opened: already judged
        self.calls.append((now, infrastructure))
        self.errors += infrastructure
        while self.calls and now - self.calls[0][0] > self.settings.window:
            self.errors -= self.calls.popleft()[1]
        if infrastructure and not self.consecutive:
            self.streak_since = now
        self.consecutive = self.consecutive + 1 if infrastructure else 0
        errors = self.errors
        if self.consecutive >= self.settings.consecutive_errors:
            return self._open(f"{self.consecutive} {_plural(kind, self.consecutive)} in "
                              f"{now - self.streak_since:.0f} s")
        span = now - self.calls[0][0]
        if len(self.calls) >= self.settings.min_calls and errors / len(self.calls) >= self.settings.failure_ratio:
            return self._open(f"{errors} infrastructure errors in {len(self.calls)} results in {span:.0f} s "
                              f"(ratio {errors / len(self.calls):.2f} >= {self.settings.failure_ratio:g})")
        return None

    def _open(self, reason: str) -> Transition:
        self.openings += 1
        self.opened_at = self.clock()
        self.calls.clear()
        self.errors = 0
        self.consecutive = 0
        return self._move("open", reason)

    def _move(self, new: State, reason: str) -> Transition:
        old, self.state = self.state, new
        self.probes_sent = self.probes_passed = 0
        if new != "open":
            self.opened_at = None
        return Transition(self.scope, self.target, old, new, reason, self.clock())


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return kind + ("es" if kind.endswith("sh") else "s")


class BreakerBoard:
    """Every breaker of a run, made on first use, keyed by (scope, target)."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.breakers: dict[tuple[Scope, str], CircuitBreaker] = {}

    def get(self, scope: Scope, target: str) -> CircuitBreaker:
        key = (scope, target)
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = CircuitBreaker(scope, target, self.settings, self.clock)
        return breaker

    def poll(self) -> list[Transition]:
        """Every open breaker whose cool-down is over turns half-open."""
        return [t for b in list(self.breakers.values()) if (t := b.poll()) is not None]

    def next_due(self) -> float | None:
        """Seconds until the next open breaker probes (None: none open)."""
        due = [r for b in self.breakers.values() if (r := b.remaining()) is not None]
        return min(due) if due else None

    def open_ones(self, scope: Scope) -> list[CircuitBreaker]:
        return [b for b in self.breakers.values() if b.scope == scope and b.state == "open"]
