"""The typed coordinator-worker protocol: messages, the worker's session, its configuration."""

from __future__ import annotations

import dataclasses
import pickle
import sys
import types
from types import SimpleNamespace

import pytest

from testfleet.execution import protocol as P
from testfleet.execution.backends.local import LocalBackend
from testfleet.execution.parent_death import ENV_PARENT_PID
from testfleet.execution.worker_items import with_sut_space
from testfleet.execution.worker_session import WorkerSession
from testfleet.space.declare import space_to_dict
from testfleet.space.dimensions import Choice, Int
from testfleet.space.space import Space

RESULT = P.TestResult(outcome="failed", categories=["failed"], duration=0.25, start=1.0, stop=1.25,
                      when="call", message="assert 1 == 2", longrepr="E   assert 1 == 2",
                      fingerprint="test_a.py:3:AssertionError",
                      phases={"call": {"outcome": "failed", "duration": 0.25}},
                      telemetry={"worker.cpu_pct": {"mean": 12.0}},
                      series={"t": [1.0], "metric": ["worker.rss_mb"], "value": [30.0]})

MESSAGES = [
    P.Collected({"items": [], "deselected": 0, "errors": [], "skipped": [], "warnings": [],
                 "rootdir": "/r", "pid": 1, "terminal": {"reportchars": "fE", "verbosity": 0}}),
    P.Exited("gw0", 10, -9), P.Fork("gw1"), P.Hello("gw0", 10), P.Started(3, 1.5), P.Ran(3, RESULT),
    P.LateTeardown(3, RESULT), P.Telemetry({"t": [], "metric": [], "value": []}),
    P.Fatal("gw0", "the SUT did not start", 2), P.Bye("gw0", None),
    P.Configure(P.WorkerConfig(worker_count=4, seed=7, rulesets=(("r.yaml", {"version": 1}),))),
    P.Run([0, 1, 5], True, {5: P.Explored(1, {"x": 2}, None)}), P.Ruleset("r.yaml", {"version": 2}),
    P.Flush(), P.Stop(), P.Shutdown(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_is_frozen_and_reads_back_as_sent(message: object) -> None:
    assert dataclasses.is_dataclass(message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.anything = 1  # type: ignore[attr-defined]
    assert P.decode(P.encode(message)) == message


class Level:
    """A value of a class defined in a test module (pickled by reference to that module)."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_a_result_naming_a_class_the_coordinator_cannot_import_is_unreadable_and_says_where(
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("test_levels")
    module.Level = Level  # type: ignore[attr-defined]
    monkeypatch.setattr(Level, "__module__", "test_levels")
    with monkeypatch.context() as inside_the_test_session:
        inside_the_test_session.setitem(sys.modules, "test_levels", module)
        data = P.encode(P.Ran(4, dataclasses.replace(RESULT, phases={"call": {"level": Level(2)}})))
    with pytest.raises(P.UnreadableMessage) as caught:
        P.decode(data)
    assert caught.value.missing == ["test_levels.Level"]
    assert isinstance(caught.value.message, P.Ran) and caught.value.message.index == 4
    assert P.holds_stand_in(caught.value.message)
    assert not P.holds_stand_in(RESULT)


def _session() -> WorkerSession:
    plugin = SimpleNamespace(reports=[])
    session = SimpleNamespace(config=SimpleNamespace(), items=[], shouldfail=False, shouldstop=False)
    return WorkerSession(plugin, session, "gw0")  # type: ignore[arg-type]


def test_the_last_queued_item_waits_for_the_next_or_a_flush() -> None:
    session = _session()
    session.handle(P.Run([4]))
    assert not session._runnable()  # its nextitem is not known yet
    session.handle(P.Run([5], report_start=True, explored={5: P.Explored(4, {"x": 1})}))
    assert session._runnable() and list(session.queue) == [4, 5] and session.report_start
    assert session.explored[5].base == 4
    session.queue.popleft()
    assert not session._runnable()
    session.handle(P.Flush())
    assert session._runnable()
    session.handle(P.Run([6]))  # more work after a flush: the last item waits again
    session.queue.popleft()
    assert not session._runnable()


def test_shutdown_flushes_and_stop_ends_the_session() -> None:
    session = _session()
    session.handle(P.Run([1]))
    session.handle(P.Shutdown())
    assert session._runnable() and session.shut_down and not session.stopped
    session.handle(P.Stop())
    assert session.stopped


def test_the_sut_space_joins_a_tests_space_as_the_worker_joined_them() -> None:
    own = Space({"x": Int(1, 8), "mode": Choice(["a", "b"])}, ["x <= 4 or mode == 'a'"])
    sut = Space({"sut.threads": Int(1, 16, default=4)}, ["sut.threads >= 2"])
    joined = Space({**own.dimensions, **sut.dimensions}, [c.text for c in own.constraints + sut.constraints])
    assert with_sut_space(space_to_dict(own), space_to_dict(sut)) == space_to_dict(joined)
    assert with_sut_space(None, space_to_dict(sut)) == space_to_dict(Space(sut.dimensions, ["sut.threads >= 2"]))
    assert with_sut_space(space_to_dict(own), None) == space_to_dict(own)


def test_a_worker_process_is_told_only_how_to_reach_the_coordinator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTFLEET_WORKER", "gw9")  # the coordinator's own, were it a worker
    backend = LocalBackend(["-q"], workers=2, start_method="spawn")
    try:
        env = backend._env()
    finally:
        backend.close()
    assert {k for k in env if k.startswith("TESTFLEET_")} == {P.ENV_ADDRESS, P.ENV_AUTHKEY, ENV_PARENT_PID}


def test_a_worker_config_pickles_with_its_sut_table() -> None:
    from testfleet.execution.sut import SutSpec

    spec = SutSpec.model_validate({"command": "python -m http.server", "cwd": "/srv"})
    config = P.WorkerConfig(seed=3, telemetry_interval=0.0, sut=spec,
                            sut_space=space_to_dict(Space({"sut.n": Int(1, 3)})))
    assert pickle.loads(pickle.dumps(P.Configure(config))).config == config
