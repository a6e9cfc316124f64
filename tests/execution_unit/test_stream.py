"""The run's one typed stream: the console (any listener) and the store take results, samples and
events as subscribers of the coordinator's bus, each in the order the run produced them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from testfleet.execution import protocol as P
from testfleet.execution.bus import Bus, BusMessage
from testfleet.execution.coordinator import Orchestrator, Slot
from testfleet.execution.plan import RunPlan
from testfleet.execution.scheduler import Scheduler
from testfleet.execution.stream import (
    Collected,
    ProgressEvent,
    ResultArrived,
    Said,
    SeriesSampled,
    TerminalOptions,
    TestStarted,
    WorkerChanged,
    listen,
)
from testfleet.model import Case, Outcome, Result, Run, Variant


class Calls:
    """A listener that writes down every call it gets (the console's interface)."""

    def __init__(self, terminal: bool = True) -> None:
        self.calls: list[tuple[Any, ...]] = []
        if terminal:
            self.on_terminal = lambda options: self.calls.append(("terminal", options))

    def on_collected(self, total: int, deselected: int, workers: int) -> None:
        self.calls.append(("collected", total, deselected, workers))

    def on_running(self, worker_id: str, nodeid: str | None) -> None:
        self.calls.append(("running", worker_id, nodeid))

    def on_result(self, result: Result, done: int, total: int) -> None:
        self.calls.append(("result", result.nodeid, result.outcome.value, done, total))

    def on_message(self, text: str) -> None:
        self.calls.append(("message", text))

    def on_exploring(self, budget: str) -> None:
        self.calls.append(("exploring", budget))

    def on_worker(self, worker_id: str, state: str, detail: str) -> None:
        self.calls.append(("worker", worker_id, state, detail))

    def on_series(self, worker_id: str, columns: P.Series) -> None:
        self.calls.append(("series", worker_id, list(columns["metric"])))


class Recorder:
    """What the store is handed, batch by batch."""

    def __init__(self) -> None:
        self.results: list[list[str]] = []
        self.series: list[dict[str, list[Any]]] = []
        self.events: list[list[str]] = []

    def begin_run(self, run: Run, cases: list[Case], variants: list[Variant]) -> None: ...

    def append_results(self, results: list[Result]) -> None:
        self.results.append([f"{r.nodeid}#{r.attempt}:{r.outcome.value}" for r in results])

    def append_series(self, run_id: str, columns: dict[str, list[Any]]) -> None:
        self.series.append({k: list(v) for k, v in columns.items()})

    def add_variants(self, variants: list[Variant]) -> None: ...

    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        self.events.append([e["kind"] for e in events])

    def snapshot_config(self, run_id: str, instance: str, config: dict[str, Any]) -> str:
        return ""


def result(nodeid: str, outcome: Outcome = Outcome.passed) -> Result:
    now = datetime.now(UTC)
    return Result(run_id="r", variant_id="v", case_id="c", nodeid=nodeid, outcome=outcome,
                  started_at=now, finished_at=now)


def test_a_listener_hears_each_progress_event_as_its_method_and_a_replay_only_reaches_the_store() -> None:
    bus, heard = Bus(), Calls()
    listen(bus, heard)
    stored: list[str] = []
    bus.subscribe(ResultArrived, lambda e: stored.append(e.result.nodeid))
    bus.publish(TerminalOptions({"reportchars": "fE"}))
    bus.publish(Collected(2, 1, 2))
    bus.publish(WorkerChanged("gw0", "started", ""))
    bus.publish(TestStarted("gw0", "t.py::a"))
    bus.publish(ResultArrived(result("t.py::a"), 1, 2))
    bus.publish(ResultArrived(result("t.py::a"), 1, 2, progress=False))  # a replay
    bus.publish(SeriesSampled("gw0", {"t": [1.0], "metric": ["cpu"], "value": [0.5]}))
    bus.publish(Said("done"))
    assert heard.calls == [("terminal", {"reportchars": "fE"}), ("collected", 2, 1, 2),
                           ("worker", "gw0", "started", ""), ("running", "gw0", "t.py::a"),
                           ("result", "t.py::a", "passed", 1, 2), ("series", "gw0", ["cpu"]), ("message", "done")]
    assert stored == ["t.py::a", "t.py::a"]
    assert bus.log == []  # progress is delivered, not kept: the bus's log is the collaboration's


def test_a_listener_without_on_terminal_is_not_asked_for_it() -> None:
    bus, heard = Bus(), Calls(terminal=False)
    listen(bus, heard)
    bus.publish(TerminalOptions({"verbose": 1}))
    bus.publish(Said("x"))
    assert heard.calls == [("message", "x")]


def test_subscribers_hear_their_type_and_its_subclasses_and_a_late_one_hears_what_follows() -> None:
    bus = Bus()
    collaboration: list[object] = []
    progress: list[object] = []
    bus.subscribe(BusMessage, collaboration.append)
    bus.subscribe(ProgressEvent, progress.append)
    bus.publish(Said("before"))  # its route is worked out now, before the late subscription
    late: list[str] = []
    bus.subscribe(Said, lambda e: late.append(e.text))
    bus.publish(Said("after"))
    assert late == ["after"] and progress == [Said("before"), Said("after")] and collaboration == []


def two_test_run(recorder: Recorder, heard: Calls) -> tuple[Orchestrator, Slot]:
    nodeids = ["t.py::test_a", "t.py::test_b"]
    host = Orchestrator(_Backend(), RunPlan(workers=1, reruns=1), Run(run_id="r", started_at=datetime.now(UTC)),
                        recorder, heard)  # type: ignore[arg-type]
    host.items = [{"nodeid": n, "file": "t.py", "line": i} for i, n in enumerate(nodeids)]
    host.cases = [Case.from_nodeid(n, file="t.py") for n in nodeids]
    host.variants = [Variant.of(c) for c in host.cases]
    host.total = 2
    host.scheduler = Scheduler(nodeids, workers=1)
    slot = Slot("gw0", ready=True)
    host.fleet.slots["gw0"] = slot
    return host, slot


class _Backend:
    workers_collect = False

    def send(self, worker_id: str, message: object) -> bool:
        return True

    def kill(self, worker_id: str, sig: int) -> None: ...


def test_the_console_and_the_store_take_the_same_results_from_the_coordinator_in_order() -> None:
    recorder, heard = Recorder(), Calls()
    host, _slot = two_test_run(recorder, heard)
    failed = P.TestResult(outcome="failed", categories=["failed"], when="call", duration=0.1, start=1.0, stop=1.1,
                          series={"t": [1.05], "metric": ["cpu_percent"], "value": [12.0]})
    passed = P.TestResult(outcome="passed", categories=["passed"], when="call", duration=0.1, start=2.0, stop=2.1)
    host.recording.record(0, "gw0", failed)  # retried (reruns=1): not final
    host.recording.record(0, "gw0", passed)  # flaky, final
    host.recording.record(1, "gw0", passed)
    host.recording.add_events([{"kind": "outlier", "case_id": "c", "message": "m"}])
    host.storing.flush(force=True)
    assert [c for c in heard.calls if c[0] == "result"] == [
        ("result", "t.py::test_a", "failed", 0, 2), ("result", "t.py::test_a", "passed", 1, 2),
        ("result", "t.py::test_b", "passed", 2, 2)]
    assert ("series", "gw0", ["cpu_percent"]) in heard.calls
    assert recorder.results == [["t.py::test_a#1:failed", "t.py::test_a#2:passed", "t.py::test_b#1:passed"]]
    assert recorder.series == [{"worker": ["gw0"], "t": [1.05], "metric": ["cpu_percent"], "value": [12.0]}]
    assert recorder.events == [["outlier"]] and host.recording.anomalies[0]["kind"] == "outlier"
    host.storing.flush(force=True)  # nothing new: nothing written twice
    assert len(recorder.results) == 1
