"""What a fault broke and how long recovery took, from a run's fault events and attempts."""

from __future__ import annotations

import pytest

from testfleet.analysis.recovery_time import Attempt, analyse


def _steady(worker: str, start: float, stop: float, step: float = 0.1, gap: tuple[float, float] | None = None,
            ) -> list[Attempt]:
    """A worker finishing one passing test every ``step`` s, nothing during ``gap``."""
    out, t, n = [], start, 0
    while t < stop:
        if gap is None or not gap[0] <= t < gap[1]:
            out.append(Attempt(worker, f"t{worker}{n}", "passed", t, t + step, "passed"))
            n += 1
        t += step
    return out


def _fault(fault: str, target: str, at: float, duration: float = 0.0, **extra: object) -> dict:
    return {"fault": fault, "target": target, "at": at, "duration": duration, "params": {}, **extra}


def test_recovery_is_the_time_until_the_target_is_back_at_its_rate() -> None:
    attempts = _steady("gw0", 0, 30, gap=(10, 13)) + _steady("gw1", 0, 30)
    (impact,) = analyse([_fault("stop_worker", "gw0", 10.0, 3.0)], attempts)
    assert impact.scope == "gw0"
    assert impact.rate_before == pytest.approx(10, rel=0.15)
    assert impact.recovery is not None and 2.8 <= impact.recovery <= 3.3
    assert impact.broken == []


def test_a_fault_that_slows_nothing_recovers_at_once() -> None:
    attempts = _steady("gw0", 0, 30)
    (impact,) = analyse([_fault("latency", "gw0", 12.0, 2.0)], attempts)
    assert impact.recovery is not None and impact.recovery < 0.2


def test_broken_attempts_are_the_targets_failures_in_the_fault_window() -> None:
    attempts = _steady("gw0", 0, 20) + [
        Attempt("gw0", "crashed_one", "crashed", 9.5, 10.1, "passed"),
        Attempt("gw0", "later", "failed", 18.0, 18.5, "failed"),  # long after the window
        Attempt("gw1", "elsewhere", "failed", 10.0, 10.2, "failed"),  # another worker
    ]
    (impact,) = analyse([_fault("kill_worker", "gw0", 10.0)], attempts)
    assert [a.nodeid for a in impact.broken] == ["crashed_one"]
    assert impact.scope == "fleet"  # the killed worker's replacement has another id


def test_a_target_that_never_gets_back_has_no_recovery() -> None:
    attempts = _steady("gw0", 0, 10) + _steady("gw1", 0, 20)
    (impact,) = analyse([_fault("stop_worker", "gw0", 10.0, 5.0)], attempts)
    assert impact.recovery is None


def test_skipped_faults_are_not_analysed() -> None:
    assert analyse([_fault("kill_node", "gw0", 1.0, skipped="one node")], _steady("gw0", 0, 5)) == []
