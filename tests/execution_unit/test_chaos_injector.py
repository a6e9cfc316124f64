"""The injector, driven by hand as the coordinator's loop drives it: each due fault reaches its
target (real processes for the signals), becomes an event and a console line, and whatever it
stopped is continued when its time is up or the run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from testfleet.execution.backends.base import WorkerInfo
from testfleet.execution.bus import Bus
from testfleet.execution.chaos.injector import Injector
from testfleet.execution.chaos.schedule import parse_schedule


class _Backend:
    name = "local"

    def __init__(self, pids: dict[str, int]) -> None:
        self.info = {w: WorkerInfo(w, pid) for w, pid in pids.items()}
        self.killed: list[tuple[str, int]] = []

    def kill(self, worker_id: str, sig: int) -> None:
        self.killed.append((worker_id, sig))


class _Host:
    def __init__(self, backend: _Backend, workers: list[str]) -> None:
        self.backend = backend
        self.stopping = False
        self.events: list[dict[str, Any]] = []
        self.said: list[str] = []
        slots = [SimpleNamespace(worker_id=w, ready=True) for w in workers]
        self.fleet = SimpleNamespace(live=lambda: slots)
        self.recovery = SimpleNamespace(injected=set())
        self.recording = SimpleNamespace(add_events=self.events.extend)
        self.bus = Bus(self.events.extend)  # each fault is a message, kept as an event row

    def say(self, text: str) -> None:
        self.said.append(text)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _injector(host: _Host, tmp_path: Path, faults: list[dict[str, Any]], seed: int = 1) -> Injector:
    return Injector(host, parse_schedule(faults, "chaos.yaml"), tmp_path, seed)  # type: ignore[arg-type]


def _status(pid: int, wanted: str) -> str:
    """The process's state once it is ``wanted`` (a signal takes effect when the process is next
    scheduled), or whatever it is after 2 s."""
    deadline = time.monotonic() + 2
    while (status := psutil.Process(pid).status()) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return str(status)


def _run_until_quiet(injector: Injector, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    injector.tick()
    while (injector.next is not None or injector.resume) and time.monotonic() < deadline:
        time.sleep(min(injector.until_next(), 0.5))
        injector.tick()


def test_kill_worker_goes_through_the_backend_and_is_an_event(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw0": 1, "gw1": 2}), ["gw0", "gw1"])
    _run_until_quiet(_injector(host, tmp_path, [{"at": 0, "fault": "kill_worker", "target": "gw1"}]))
    assert host.backend.killed == [("gw1", signal.SIGKILL)]
    assert host.recovery.injected == {"gw1"}  # its replacement will not spend --max-worker-restarts
    (event,) = host.events
    assert (event["kind"], event["fault"], event["target"], event["worker"]) == ("fault", "kill_worker", "gw1", "gw1")
    assert event["at"] == pytest.approx(time.time(), abs=10) and "skipped" not in event
    assert host.said == ["chaos: kill_worker on gw1"]


def test_stop_worker_stops_it_for_its_duration_then_continues_it(tmp_path: Path,
                                                                  sleeper: subprocess.Popen[bytes]) -> None:
    host = _Host(_Backend({"gw0": sleeper.pid}), ["gw0"])
    injector = _injector(host, tmp_path, [{"at": 0, "fault": "stop_worker", "target": "any", "duration": 0.3}])
    injector.tick()
    assert _status(sleeper.pid, psutil.STATUS_STOPPED) == psutil.STATUS_STOPPED
    _run_until_quiet(injector)
    assert _status(sleeper.pid, psutil.STATUS_SLEEPING) != psutil.STATUS_STOPPED
    assert host.events[0]["duration"] == 0.3


def test_close_continues_a_paused_sut_whose_fault_outlives_the_run(tmp_path: Path,
                                                                   sleeper: subprocess.Popen[bytes]) -> None:
    (tmp_path / "sut-gw0.json").write_text(json.dumps({"pid": sleeper.pid, "port": 1, "proxy_port": 2}))
    host = _Host(_Backend({"gw0": 1}), ["gw0"])
    injector = _injector(host, tmp_path, [{"at": 0, "fault": "pause_sut", "target": "gw0", "duration": 600}])
    injector.tick()
    assert _status(sleeper.pid, psutil.STATUS_STOPPED) == psutil.STATUS_STOPPED
    injector.close()
    assert _status(sleeper.pid, psutil.STATUS_SLEEPING) != psutil.STATUS_STOPPED


def test_network_and_memory_faults_are_orders_to_the_workers_agent(tmp_path: Path) -> None:
    (tmp_path / "sut-gw0.json").write_text(json.dumps({"pid": 1, "port": 1, "proxy_port": 2}))
    host = _Host(_Backend({"gw0": 1}), ["gw0"])
    _run_until_quiet(_injector(host, tmp_path, [
        {"at": 0, "fault": "latency", "target": "any", "duration": 2, "params": {"ms": 100}},
        {"at": 0, "fault": "fill_memory", "target": "gw0", "duration": 1, "params": {"mib": 8}}]))
    orders = json.loads((tmp_path / "orders-gw0.json").read_text())
    assert [(o["fault"], o["params"]) for o in orders] == [("latency", {"ms": 100}), ("fill_memory", {"mib": 8})]


def test_a_fault_without_a_target_is_recorded_as_skipped_with_the_reason(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw0": 1}), ["gw0"])
    injector = _injector(host, tmp_path, [
        {"at": 0, "fault": "stop_worker", "target": "gw7", "duration": 1},  # no such worker
        {"at": 0, "fault": "kill_node", "target": "any"}])  # local backend
    _run_until_quiet(injector)
    assert [e.get("skipped") for e in host.events] == ["gw7 is not a live worker", "kill_node needs the Ray backend"]
    assert host.backend.killed == []


def test_a_fault_for_any_waits_until_a_worker_can_take_it(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw0": 1}), ["gw0"])
    injector = _injector(host, tmp_path, [{"at": 0, "fault": "latency", "target": "any", "duration": 1},
                                          {"at": 0, "fault": "kill_sut", "target": "any"}])
    injector.tick()
    assert host.events == [] and len(injector.waiting) == 2  # no SUT instance yet
    (tmp_path / "sut-gw0.json").write_text(json.dumps({"pid": 2**22 + 12345, "port": 1, "proxy_port": 2}))
    injector.tick()
    assert [(e["fault"], e["target"], e.get("skipped")) for e in host.events] == [
        ("latency", "gw0", None), ("kill_sut", "gw0", None)]
    assert not injector.waiting


def test_a_fault_still_waiting_when_the_run_ends_is_skipped(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw0": 1}), ["gw0"])
    injector = _injector(host, tmp_path, [{"at": 0, "fault": "pause_sut", "target": "any", "duration": 1}])
    injector.tick()
    injector.close()
    assert [e.get("skipped") for e in host.events] == ["the run ended before any worker could take it"]


def test_any_picks_the_same_targets_for_the_same_seed(tmp_path: Path) -> None:
    def targets(seed: int) -> list[str]:
        host = _Host(_Backend({}), ["gw0", "gw1", "gw2", "gw10"])
        _run_until_quiet(_injector(host, tmp_path, [{"every": 0.001, "count": 12, "fault": "kill_worker"}], seed))
        return [w for w, _ in host.backend.killed]

    assert targets(3) == targets(3) and len(set(targets(3))) > 1


def test_a_fault_keyed_on_progress_fires_once_that_many_tests_have_a_final_result(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw0": 1, "gw1": 2}), ["gw0", "gw1"])
    final: dict[int, object] = {}
    host.recording.final = final  # type: ignore[attr-defined]
    injector = _injector(host, tmp_path, [{"after_tests": 5, "fault": "kill_worker", "target": "gw0"},
                                          {"after_tests": 2, "fault": "kill_worker", "target": "gw1"}])
    fired = []
    for done in range(7):
        final[done] = object()  # one more final result, then the loop's tick
        injector.tick()
        fired.append([w for w, _ in host.backend.killed])
    # after 2 final results (index 1) gw1, after 5 (index 4) gw0; never before, never twice
    assert fired == [[], ["gw1"], ["gw1"], ["gw1"], ["gw1", "gw0"], ["gw1", "gw0"], ["gw1", "gw0"]]
    assert [e["fault"] for e in host.events] == ["kill_worker", "kill_worker"] and not injector.progress


def test_a_seat_as_target_reaches_the_worker_that_took_it_over(tmp_path: Path) -> None:
    host = _Host(_Backend({"gw2": 3, "gw1": 2}), [])
    slots = [SimpleNamespace(worker_id="gw2", seat="gw0", ready=True), SimpleNamespace(worker_id="gw1", seat="gw1",
                                                                                       ready=True)]
    host.fleet = SimpleNamespace(live=lambda: slots)
    _run_until_quiet(_injector(host, tmp_path, [{"at": 0, "fault": "kill_worker", "target": "gw0"},
                                                {"at": 0, "fault": "kill_worker", "target": "gw5"}]))
    assert host.backend.killed == [("gw2", signal.SIGKILL)]
    assert [e.get("skipped") for e in host.events] == [None, "gw5 is not a live worker"]


def test_any_picks_by_seat_and_fault_whatever_the_faults_before_it_hit(tmp_path: Path) -> None:
    """Two runs of one schedule whose fleets differ for a while (one lost a seat, the other
    replaced a worker under a new id) pick the same seat for a fault once their seats agree."""
    faults = [{"after_tests": n, "fault": "kill_worker", "target": "any"} for n in range(1, 21)]

    def seats_hit(fleet_at: list[list[tuple[str, str]]]) -> list[str]:
        host = _Host(_Backend({}), [])
        final: dict[int, object] = {}
        host.recording.final = final  # type: ignore[attr-defined]
        current: list[SimpleNamespace] = []
        host.fleet = SimpleNamespace(live=lambda: current)
        injector = _injector(host, tmp_path, faults, seed=7)
        hit = []
        for done, fleet in enumerate(fleet_at, start=1):
            current[:] = [SimpleNamespace(worker_id=w, seat=seat, ready=True) for seat, w in fleet]
            final[done] = object()
            injector.tick()
            hit.append({w: seat for seat, w in fleet}[host.backend.killed[-1][0]])
        return hit

    both = [("gw0", "gw0"), ("gw1", "gw1")]
    one = [("gw1", "gw1")]
    replaced = [("gw0", "gw3"), ("gw1", "gw1")]
    first = seats_hit([both] * 5 + [one] * 5 + [both] * 10)
    second = seats_hit([both] * 5 + [replaced] * 5 + [both] * 10)
    assert first[10:] == second[10:] and first[:5] == second[:5]
    assert set(first) == {"gw0", "gw1"}  # both seats are picked, not always the first


def test_faults_that_fail_requests_are_kept_as_windows_of_their_worker_and_seat(tmp_path: Path) -> None:
    (tmp_path / "sut-gw2.json").write_text(json.dumps({"pid": 1, "port": 1, "proxy_port": 2}))
    host = _Host(_Backend({"gw2": 3}), [])
    slots = [SimpleNamespace(worker_id="gw2", seat="gw0", ready=True)]
    host.fleet = SimpleNamespace(live=lambda: slots)
    before = time.time()
    injector = _injector(host, tmp_path, [
        {"at": 0, "fault": "latency", "target": "gw0", "duration": 2, "params": {"ms": 100}},
        {"at": 0, "fault": "http_error", "target": "gw0", "duration": 3, "params": {"share": 0.5}}])
    _run_until_quiet(injector)
    (window,) = injector.windows  # latency fails no request: it has no window
    assert (window.fault, window.worker, window.seat) == ("http_error", "gw2", "gw0")
    assert before <= window.start <= time.time() and window.end == pytest.approx(window.start + 3)
    assert window.params == {"share": 0.5}
