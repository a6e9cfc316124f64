"""The rule that blames a failure on the chaos injection: the proxy must have failed the test's own
requests on purpose while it ran; the injector's window only names the fault."""

from __future__ import annotations

import pytest

from testfleet.execution.chaos.blame import SLACK, Window, blame
from testfleet.model import Outcome

WINDOW = Window("http_error", "gw2", "gw0", start=100.0, end=103.0, params={"share": 0.25, "status": 503})


def _blame(outcome: Outcome = Outcome.failed, injected: dict[str, int] | None = None, *, infra: bool = False,
           worker: str = "gw2", seat: str = "gw0", start: float = 101.0, stop: float = 101.5,
           windows: tuple[Window, ...] = (WINDOW,)):
    return blame(outcome, infra, {"http_error": 2} if injected is None else injected, worker=worker, seat=seat,
                 start=start, stop=stop, windows=windows)


def test_an_assertion_failure_after_injected_errors_is_the_injections() -> None:
    found = _blame()
    assert found is not None and found.window == WINDOW and found.fault == "http_error"
    assert found.reason() == ("the chaos proxy failed 2 of its requests on purpose (2 by http_error) during "
                              "http_error share=0.25 status=503 for 3s on gw2")


@pytest.mark.parametrize("outcome", [Outcome.passed, Outcome.skipped, Outcome.xfailed, Outcome.crashed,
                                     Outcome.timeout])
def test_only_a_failure_or_an_error_is_judged(outcome: Outcome) -> None:
    assert _blame(outcome) is None


def test_an_error_is_judged_too() -> None:
    assert _blame(Outcome.error) is not None


def test_overlapping_a_window_is_not_enough_without_an_injected_error() -> None:
    # share 0.25: the test's requests all went through; it failed on its own
    assert _blame(injected={}) is None
    assert _blame(injected={"http_error": 0}) is None


def test_toxics_that_only_slow_requests_are_not_blamed() -> None:
    assert _blame(injected={"latency": 3}) is None


def test_an_infrastructure_error_already_is_left_to_the_breakers_rule() -> None:
    assert _blame(infra=True) is None


def test_a_window_matches_by_worker_or_seat_and_time() -> None:
    assert _blame(worker="gw5", seat="gw0").window == WINDOW  # the seat's replacement
    assert _blame(worker="gw2", seat="").window == WINDOW
    assert _blame(worker="gw1", seat="gw1").window is None  # another seat's window
    # within the slack of the agent's poll either side, not beyond
    assert _blame(start=103.0 + SLACK - 0.1, stop=104.5).window == WINDOW
    assert _blame(start=103.0 + SLACK + 0.1, stop=105.0).window is None
    assert _blame(start=98.0, stop=100.0 - SLACK + 0.1).window == WINDOW
    assert _blame(start=97.0, stop=100.0 - SLACK - 0.1).window is None


def test_the_proxys_count_is_the_evidence_even_without_a_window() -> None:
    found = _blame(worker="gw1", seat="gw1")
    assert found is not None and found.window is None
    assert found.reason().endswith("no injection window of the coordinator matched its time")


def test_the_window_in_force_when_the_test_ended_is_named() -> None:
    later = Window("http_error", "gw2", "gw0", start=101.2, end=102.0)
    reset = Window("reset_peer", "gw2", "gw0", start=101.3, end=102.0)
    found = _blame(windows=(WINDOW, later, reset))
    assert found is not None and found.window == later  # reset_peer failed none of its requests
    both = _blame(injected={"http_error": 1, "reset_peer": 1}, windows=(WINDOW, later, reset))
    assert both is not None and both.window == reset
    assert "(1 by http_error, 1 by reset_peer)" in both.reason()
