"""Which failures an injected network error caused: those are the infrastructure's, not the test's.

A test that fails with an assertion error is normally the test's failure
(:func:`~testfleet.execution.breakers.is_infrastructure` says no). Under ``--chaos``, though, a
test whose request was answered ``503`` by the chaos proxy (``http_error``), or whose connection
the proxy reset (``reset_peer``) or held (``timeout``), may fail on an assertion about that
answer: its verdict is then the injection's. The rule (:func:`blame`):

* only a result that ``failed`` or ``error``\\ ed, and that the breakers' rule does not already
  call an infrastructure error, is judged here;
* it is blamed on the injection when the proxy in front of its worker's SUT instance failed at
  least one request *on purpose while that test ran*: the worker reads the proxy's counters
  (:meth:`~testfleet.execution.chaos.proxy.ChaosProxy.injected`) before and after each test and
  reports the difference (``TestResult.injected``). Overlapping an injection window is not enough:
  a ``share`` of 0.1 leaves most requests alone, and a test that failed on its own during the
  window keeps its verdict;
* the injector's record of the window (:class:`Window`: fault, worker and seat, from when to
  when, parameters) names the fault in the reason; a window matches the result when it was aimed
  at the result's worker or seat, is of a toxic the proxy counted, and overlaps the test's
  execution (with :data:`SLACK` seconds either side, for the agent's poll). The proxy's count is
  the evidence: with no matching window (a clock that differs on a remote node), the failure is
  still blamed, and the reason says which toxic hit.

A blamed result goes the way of a refused connection: retried (recovery levels 1 and 2, with
breakers on), counted by the breakers, and published as an ``injected_failure`` event whose
message says why (:class:`~testfleet.execution.resilience_messages.InjectedFailure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from testfleet.execution.chaos.proxy import ERROR_TOXICS
from testfleet.model import Outcome

__all__ = ["ERROR_TOXICS", "SLACK", "Blame", "Window", "blame"]

#: seconds a window is widened by on each side: the worker's agent applies an order within its
#: poll (0.1 s) of the injector writing it, and the two clocks are read in different processes
SLACK = 1.0


@dataclass(frozen=True)
class Window:
    """One network fault the injector ordered: on which worker (and its seat), from when to when
    (epoch seconds), with what parameters."""

    fault: str
    worker: str
    seat: str
    start: float
    end: float
    params: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        params = "".join(f" {k}={v:g}" for k, v in self.params.items())
        return f"{self.fault}{params} for {self.end - self.start:g}s on {self.worker}"


@dataclass(frozen=True)
class Blame:
    """Why a failed result is the injection's: the requests failed on purpose, and the window."""

    injected: dict[str, int]
    window: Window | None

    @property
    def fault(self) -> str:
        return self.window.fault if self.window is not None else next(iter(self.injected))

    def reason(self) -> str:
        hits = ", ".join(f"{n} by {kind}" for kind, n in sorted(self.injected.items()))
        total = sum(self.injected.values())
        text = f"the chaos proxy failed {total} of its requests on purpose ({hits})"
        if self.window is not None:
            text += f" during {self.window.describe()}"
        else:
            text += "; no injection window of the coordinator matched its time"
        return text


def blame(outcome: Outcome | str, infrastructure: bool, injected: Mapping[str, int], *, worker: str, seat: str,
          start: float | None, stop: float | None, windows: Iterable[Window]) -> Blame | None:
    """The injection's part in a result: a :class:`Blame` when its failure is the injection's
    (see the module's rule), else None."""
    if Outcome(outcome) not in (Outcome.failed, Outcome.error) or infrastructure:
        return None
    hits = {kind: int(n) for kind, n in injected.items() if kind in ERROR_TOXICS and n > 0}
    if not hits:
        return None
    began = start if start is not None else stop
    ended = stop if stop is not None else start
    places = {worker, seat} - {""}
    matching = [w for w in windows if w.fault in hits and places & {w.worker, w.seat}
                and began is not None and ended is not None
                and w.start - SLACK <= ended and began <= w.end + SLACK]
    # the latest window that began before the test ended: the one in force when it failed
    window = max(matching, key=lambda w: w.start, default=None)
    return Blame(hits, window)
