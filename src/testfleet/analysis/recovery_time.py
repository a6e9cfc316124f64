"""What each injected fault (``--chaos``) broke, and how long the fleet took to recover from it.

Computed from the store: the run's ``fault`` events and its results (every attempt, with its
worker and its start and finish times).

* **Broken**: the attempts on the fault's target worker that failed, errored, crashed or timed
  out between the fault and the end of its window (its duration plus a grace of a few expected
  completions), each with its final verdict (a crashed test is retried, and may have passed).
* **Recovery**: from the fault to the start of the first window in which the scope completes
  tests at :data:`BACK_TO` of its pre-fault rate. The scope is the target worker, except for
  the faults that remove a worker (kill_worker, kill_actor, kill_node): a replacement has a new
  id, so the scope is then the whole fleet. The pre-fault rate is that of the ``LOOKBACK``
  seconds before the fault (the run's average rate for the scope when that holds too few
  completions); the window is long enough to expect :data:`WINDOW_COMPLETIONS` completions. A
  scope that never gets back to that rate before the run ends has recovery ``None``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

LOOKBACK = 10.0
BACK_TO = 0.8
WINDOW_COMPLETIONS = 3
BAD = frozenset({"failed", "error", "crashed", "timeout"})
FLEET_SCOPE = frozenset({"kill_worker", "kill_actor", "kill_node"})


@dataclass(frozen=True)
class Attempt:
    worker: str
    nodeid: str
    outcome: str
    start: float  # epoch seconds
    stop: float
    final_outcome: str  # the test's final verdict in the run


@dataclass
class FaultImpact:
    fault: str
    target: str
    at: float
    duration: float
    params: dict[str, Any]
    scope: str  # the target worker, or "fleet"
    broken: list[Attempt] = field(default_factory=list)
    recovery: float | None = None  # seconds; None: not back to the pre-fault rate before the end
    rate_before: float = 0.0  # completions per second


def _rate_before(times: list[float], at: float, first: float, last: float) -> float:
    span = min(LOOKBACK, at - first)
    if span > 0:
        count = bisect.bisect_left(times, at) - bisect.bisect_left(times, at - span)
        if count >= WINDOW_COMPLETIONS:
            return count / span
    whole = last - first
    return len(times) / whole if whole > 0 and times else 0.0


def _recovery(times: list[float], at: float, rate: float, end: float) -> float | None:
    """Seconds from ``at`` to the first window start from which the rate is back."""
    if rate <= 0:
        return None
    window = max(1.0, WINDOW_COMPLETIONS / rate)
    need = BACK_TO * rate * window
    first_after = bisect.bisect_left(times, at)
    for start in [at, *times[first_after:]]:
        if start + window > end + 1e-9:
            return None
        count = bisect.bisect_left(times, start + window) - bisect.bisect_left(times, start)
        if count >= need:
            return max(0.0, start - at)
    return None


def analyse(faults: list[dict[str, Any]], attempts: list[Attempt], end: float | None = None) -> list[FaultImpact]:
    """Each injected (not skipped) fault's impact, from its event and the run's attempts."""
    if not attempts:
        starts: list[float] = []
    else:
        starts = [a.start for a in attempts]
    end = end if end is not None else max((a.stop for a in attempts), default=0.0)
    impacts = []
    for event in faults:
        if event.get("skipped"):
            continue
        fault, target = str(event["fault"]), str(event["target"])
        at, duration = float(event["at"]), float(event.get("duration") or 0.0)
        scope = "fleet" if fault in FLEET_SCOPE else target
        mine = [a for a in attempts if scope == "fleet" or a.worker == target]
        times = sorted(a.stop for a in mine)
        first = min((a.start for a in mine), default=min(starts, default=at))
        rate = _rate_before(times, at, first, end)
        impact = FaultImpact(fault, target, at, duration, dict(event.get("params") or {}), scope,
                             rate_before=rate)
        grace = max(2.0, WINDOW_COMPLETIONS / rate) if rate > 0 else 2.0
        impact.broken = sorted((a for a in attempts if a.worker == target and a.outcome in BAD
                                and at - 0.5 <= a.stop <= at + duration + grace), key=lambda a: a.stop)
        impact.recovery = _recovery(times, at, rate, end)
        impacts.append(impact)
    return impacts


def load(store: Any, run_id: str) -> tuple[list[dict[str, Any]], list[Attempt], float | None]:
    """The run's fault events, its attempts and when its last one finished."""
    from testfleet.store.telemetry import TelemetryStore

    faults = TelemetryStore(store).events(run_id, kinds=["fault"])
    rows = store.query(
        "SELECT r.worker, r.nodeid, r.outcome, epoch(r.started_at), epoch(r.finished_at), f.outcome "
        "FROM results r LEFT JOIN (SELECT nodeid, variant_id, any_value(outcome) AS outcome FROM results "
        "WHERE run_id = $1 AND final GROUP BY nodeid, variant_id) f USING (nodeid, variant_id) "
        "WHERE r.run_id = $1 AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL", [run_id])
    attempts = [Attempt(str(w), str(n), str(o), float(s), float(e), str(fo or o)) for w, n, o, s, e, fo in rows]
    end = max((a.stop for a in attempts), default=None)
    return faults, attempts, end


def fault_impacts(store: Any, run_id: str) -> list[FaultImpact]:
    faults, attempts, end = load(store, run_id)
    return analyse(faults, attempts, end)


def describe(impact: FaultImpact, run_start: float | None = None) -> str:
    when = f"+{impact.at - run_start:.1f}s" if run_start is not None else f"{impact.at:.0f}"
    what = impact.fault + (f" {impact.duration:g}s" if impact.duration else "") + \
        "".join(f" {k}={v:g}" for k, v in impact.params.items() if isinstance(v, (int, float)))
    broke = "broke nothing"
    if impact.broken:
        names = ", ".join(sorted({a.nodeid for a in impact.broken})[:2])
        healed = sum(1 for a in impact.broken if a.final_outcome == "passed")
        broke = f"broke {len(impact.broken)} attempt{'s' if len(impact.broken) != 1 else ''} ({names}" + \
            (", ..." if len({a.nodeid for a in impact.broken}) > 2 else "") + ")" + \
            (f", {healed} passed on retry" if healed else "")
    back = f"recovered in {impact.recovery:.1f}s" if impact.recovery is not None \
        else "not back to its pre-fault rate before the run ended"
    scope = "fleet" if impact.scope == "fleet" else impact.target
    return f"  {when} {what} on {impact.target}: {broke}; {scope} {back}"


def fault_lines(store: Any, run_id: str) -> list[str]:
    """The summary's chaos section: one line per injected fault, and the skipped ones counted."""
    faults, attempts, end = load(store, run_id)
    impacts = analyse(faults, attempts, end)
    skipped = [f for f in faults if f.get("skipped")]
    if not faults:
        return ["chaos: no fault was due before the run ended"]
    start = min((a.start for a in attempts), default=None)
    head = f"chaos: {len(impacts)} fault{'s' if len(impacts) != 1 else ''} injected"
    if skipped:
        reasons = sorted({str(f["skipped"]) for f in skipped})
        head += f", {len(skipped)} skipped ({'; '.join(reasons[:2])})"
    lines = [head]
    lines += [describe(i, start) for i in impacts]
    recovered = [i.recovery for i in impacts if i.recovery is not None]
    if recovered:
        lines.append(f"  recovery: mean {sum(recovered) / len(recovered):.1f}s, longest {max(recovered):.1f}s "
                     f"({len(recovered)} of {len(impacts)} faults recovered before the end)")
    return lines
