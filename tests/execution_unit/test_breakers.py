"""Circuit breakers: the state machine on a fake clock, what counts as an infrastructure error,
and ``[tool.testfleet.breakers]`` as a user writes it."""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.execution.breakers import BreakerBoard, BreakerSettings, CircuitBreaker, is_infrastructure
from testfleet.model import Outcome
from testfleet.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **overrides: Any) -> CircuitBreaker:
    values = {"consecutive_errors": 3, "failure_ratio": 0.5, "window": 30.0, "min_calls": 6, "cooldown": 10.0}
    return CircuitBreaker("worker", "gw3", BreakerSettings(**(values | overrides)), clock)


def test_consecutive_crashes_open_it_and_say_how_many_in_how_long() -> None:
    clock = Clock()
    b = breaker(clock)
    assert b.record(True, "crash") is None
    clock.now += 4
    assert b.record(True, "crash") is None
    clock.now += 4
    change = b.record(True, "crash")
    assert change is not None and (change.old, change.new) == ("closed", "open")
    assert change.reason == "3 crashes in 8 s"
    assert b.admits() == 0


def test_a_success_between_errors_resets_the_run_but_the_ratio_still_counts() -> None:
    clock = Clock()
    b = breaker(clock)
    for bad in (True, True, False, True, True, False):  # never three in a row; 4 of 6 bad
        change = b.record(bad, "connection error")
        clock.now += 1
    assert change is not None and change.new == "open"
    assert "4 infrastructure errors in 6 results" in change.reason


def test_the_ratio_waits_for_min_calls_and_forgets_what_left_the_window() -> None:
    clock = Clock()
    b = breaker(clock, consecutive_errors=100)
    for _ in range(5):  # 5 of 5 bad, but under min_calls
        assert b.record(True) is None
    clock.now += 31  # all of them leave the window
    for bad in (False, True, False, True, False, False):
        assert b.record(bad) is None  # 2 of 6 in the window (7 of 11 had they stayed)
    assert b.state == "closed"
    assert b.record(True) is None and b.record(True) is not None  # 4 of 8: the ratio is reached


@given(st.lists(st.tuples(st.floats(0, 20), st.booleans()), max_size=60))
def test_it_opens_exactly_when_the_windows_own_counts_say_so(steps: list[tuple[float, bool]]) -> None:
    """The ratio is judged on the results of the last ``window`` seconds, counted as they come and
    go: the same verdict as counting that window afresh after every result."""
    clock = Clock()
    b = breaker(clock, consecutive_errors=1000)  # only the ratio may open it
    seen: list[tuple[float, bool]] = []
    for wait, bad in steps:
        clock.now += wait
        seen.append((clock.now, bad))
        window = [x for t, x in seen if clock.now - t <= 30.0]
        should_open = len(window) >= 6 and sum(window) / len(window) >= 0.5
        assert (b.record(bad) is not None) == should_open
        if should_open:
            return  # open now; what follows is the cool-down's, tested above


def test_cooldown_then_one_probe_success_closes() -> None:
    clock = Clock()
    b = breaker(clock, consecutive_errors=1)
    b.record(True, "timeout")
    clock.now += 9.9
    assert b.poll() is None and b.admits() == 0 and b.remaining() == pytest.approx(0.1)
    clock.now += 0.1
    change = b.poll()
    assert change is not None and (change.old, change.new) == ("open", "half_open")
    assert b.admits() == 1  # half_open_probes = 1
    b.sent_probe()
    assert b.admits() == 0  # exactly one probe
    change = b.record(False)
    assert change is not None and (change.old, change.new) == ("half_open", "closed")
    assert b.admits() is None


def test_a_failed_probe_reopens_and_counts_a_second_opening() -> None:
    clock = Clock()
    b = breaker(clock, consecutive_errors=1, half_open_probes=2)
    b.record(True, "crash")
    clock.now += 10
    b.poll()
    b.sent_probe()
    assert b.record(False) is None  # one of two probes passed: still half-open
    assert b.state == "half_open"
    change = b.record(True, "crash")
    assert change is not None and (change.old, change.new) == ("half_open", "open")
    assert b.openings == 2 and b.admits() == 0


def test_results_of_work_sent_before_it_opened_do_not_move_it() -> None:
    clock = Clock()
    b = breaker(clock, consecutive_errors=1)
    b.record(True)
    assert b.record(False) is None and b.record(True) is None
    assert b.state == "open" and b.openings == 1


def test_board_polls_every_breaker_and_knows_the_next_probe() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerSettings(consecutive_errors=1, cooldown=5), clock)
    board.get("worker", "gw1").record(True)
    clock.now += 2
    board.get("endpoint", "GET /items/{id}").record(True)
    assert board.next_due() == pytest.approx(3.0)
    clock.now += 3
    assert [(t.scope, t.new) for t in board.poll()] == [("worker", "half_open")]
    assert [b.target for b in board.open_ones("endpoint")] == ["GET /items/{id}"]


@pytest.mark.parametrize(("outcome", "message", "infra"), [
    (Outcome.crashed, "worker gw1 crashed: killed by signal 9 (SIGKILL)", True),
    (Outcome.timeout, "Timeout: t ran longer than 1s", True),
    (Outcome.failed, "ConnectionRefusedError: [Errno 111] Connection refused", True),
    (Outcome.failed, "httpx.ConnectError: [Errno 111] Connection refused", True),
    (Outcome.failed, "step 'get' (GET http://127.0.0.1:9/x): no response: ConnectError: All connection "
                     "attempts failed", True),
    (Outcome.failed, "aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host", True),
    (Outcome.error, "the system under test crashed during this test (exit code -9); restarted it", True),
    (Outcome.error, "the system under test did not start: not ready within 10s", True),
    # a connection the network path reset (the reset_peer toxic), as httpx, the stdlib and requests say it
    (Outcome.failed, "httpx.ReadError: [Errno 104] Connection reset by peer", True),
    (Outcome.failed, "ConnectionResetError: [Errno 104] Connection reset by peer", True),
    (Outcome.failed, "requests.exceptions.ConnectionError: ('Connection aborted.', ConnectionResetError(104, "
                     "'Connection reset by peer'))", True),
    (Outcome.failed, "AssertionError: assert 2 == 3", False),
    (Outcome.failed, "AssertionError: the reset of the counter by the peer service", False),
    (Outcome.failed, "step 'get' (GET http://127.0.0.1:9/x): status 500, expected [200]", False),
    (Outcome.passed, "", False),
    (Outcome.skipped, "Connection refused", False),
])
def test_infrastructure_errors_are_told_from_assertion_failures(outcome: Outcome, message: str,
                                                                infra: bool) -> None:
    assert is_infrastructure(outcome, message) is infra


# -- [tool.testfleet.breakers] ------------------------------------------------------------------
VALID: dict[str, st.SearchStrategy[Any]] = {
    "enabled": st.booleans(),
    "failure_ratio": st.floats(min_value=0.01, max_value=1.0),
    "window": st.floats(min_value=0.1, max_value=1e5) | st.integers(1, 10**5),
    "min_calls": st.integers(1, 1000),
    "consecutive_errors": st.integers(1, 1000),
    "cooldown": st.floats(min_value=0.0, max_value=1e5) | st.integers(0, 10**5),
    "half_open_probes": st.integers(1, 100),
    "quarantine_after": st.integers(1, 100),
}
ANY = (st.integers(-10, 10**6) | st.floats(allow_infinity=False) | st.booleans()
       | st.text(string.ascii_letters, max_size=5))


def _valid(key: str, value: Any) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    number = (is_int or isinstance(value, float)) and not (isinstance(value, float) and math.isnan(value))
    match key:
        case "enabled":
            return isinstance(value, bool)
        case "failure_ratio":
            return number and 0 < value <= 1
        case "window":
            return number and value > 0
        case "cooldown":
            return number and value >= 0
        case "min_calls" | "consecutive_errors" | "half_open_probes" | "quarantine_after":
            return is_int and value >= 1
    return False  # an unknown key


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), unique=True, max_size=5)):
        table[key] = draw(VALID[key] | ANY if draw(st.booleans()) else VALID[key])
    if draw(st.integers(0, 4)) == 0:
        table["cool_down"] = draw(ANY)  # a misspelt key
    return table


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("breakers")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables())
@example(table={"failure_ratio": 1.5})
@example(table={"cooldown": -1})
@example(table={"min_calls": 2.0})
@example(table={"cool_down": 3})
def test_the_table_loads_as_written_or_fails_naming_file_and_key(folder: Path, table: dict[str, Any]) -> None:
    path = folder / "pyproject.toml"
    path.write_text("[tool.testfleet.breakers]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items()))
    invalid = [k for k, v in table.items() if not _valid(k, v)]
    try:
        loaded, _source = load_settings([], {}, cwd=folder)
    except SettingsError as exc:
        assert invalid, f"a valid table was refused: {table!r}: {exc}"
        assert str(path) in str(exc)
        assert exc.place in {f"tool.testfleet.breakers.{k}" for k in invalid}, (exc.place, invalid)
        assert f"[{exc.place}]" in str(exc)
        return
    assert not invalid, f"loaded bad values {invalid} of {table!r}"
    for key, value in table.items():
        assert getattr(loaded.breakers, key) == value
    for key in set(VALID) - set(table):  # the rest keep their defaults
        assert getattr(loaded.breakers, key) == BreakerSettings.model_fields[key].default
