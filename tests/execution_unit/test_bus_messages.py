"""The typed messages of replication, hand-off and resilience become the event rows their readers
have always read (the summary, ``testfleet show``, the analysis, recovery_time), stored in a real
DuckDB store and read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testfleet.execution.bus import Bus
from testfleet.execution.handoff import CapacityAwaited, CopyDecided, CopyStarted, summary
from testfleet.execution.replication import FailureClassified, ReplayQueued, verdict_lines
from testfleet.execution.resilience_messages import BreakerChanged, FaultInjected, RecoveryTaken
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

COPY = {"subject": "t.py::test_slow", "case_id": "c1", "variant_id": "v1", "nodeid": "t.py::test_slow",
        "worker": "gw1", "original": "gw0", "copy": "gw1", "historical_s": 0.1}


def published() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    bus = Bus(rows.extend, clock=iter(float(t) for t in range(100, 200)).__next__)
    bus.publish(FaultInjected(action="inject", subject="gw0", reason="chaos: stop_worker 2s on gw0", worker="gw0",
                              fault="stop_worker", target="gw0", at=100.0, duration=2.0, params={},
                              schedule="mild"))
    bus.publish(BreakerChanged(action="open", subject="gw0", reason="worker gw0: breaker open after 2 timeouts; "
                               "1 test moved", worker="gw0", scope="worker", target="gw0", old="closed", new="open",
                               cause="2 timeouts", moved=1))
    bus.publish(RecoveryTaken(action="quarantine", subject="gw0", reason="recovery level 3 (quarantine) for gw0: x",
                              level=3, target="gw0", cause="x"))
    bus.publish(CopyStarted(**COPY, reason="t.py::test_slow: running 3.0 s on gw0; a speculative copy starts on gw1",
                            elapsed_s=3.0))
    bus.publish(CopyDecided(**COPY, reason="the copy won", winner="gw1", loser="gw0", winner_origin="speculative",
                            outcome="passed", attempt=1, original_ran_s=14.2, copy_ran_s=0.1))
    bus.publish(CapacityAwaited(reason="capacity: 0 tests found a node in 5 s; 1 still unmet, skipped",
                                requested=["gpu=1"], waited_s=5.0, met=[], unmet=["t.py::test_gpu"]))
    bus.publish(ReplayQueued(subject="t.py::test_env", case_id="c2", variant_id="v3", nodeid="t.py::test_env",
                             parent_id="v2", worker="gw0", repeat=0, config={}, reason="replay of v2 on gw0"))
    bus.publish(FailureClassified(
        subject="t.py::test_env", case_id="c2", variant_id="v2", nodeid="t.py::test_env",
        verdict="environment-specific", keys=["worker"],
        differences={"worker": {"failing": ["gw1"], "passing": ["gw0"]}}, rate=0.5, interval=[0.1, 0.9],
        executions=2, failures=1, trigger="failure", original={"worker": "gw1", "config": {}},
        replays=[{"worker": "gw0", "outcome": "passed"}], dropped=0, complete=True,
        reason="replicated t.py::test_env: environment-specific: worker: fails with gw1, passes with gw0"))
    return rows


def test_the_rows_keep_the_fields_their_readers_use_under_their_old_names() -> None:
    rows = published()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    (fault,) = by_kind["fault"]
    assert "skipped" not in fault and "late" not in fault  # absent, not None: injected on time
    assert (fault["fault"], fault["target"], fault["at"], fault["duration"]) == ("stop_worker", "gw0", 100.0, 2.0)
    (breaker,) = by_kind["breaker"]
    assert (breaker["from"], breaker["to"], breaker["reason"], breaker["moved"]) == ("closed", "open", "2 timeouts", 1)
    assert breaker["message"].startswith("worker gw0: breaker open")
    (recovery,) = by_kind["recovery"]
    assert (recovery["level"], recovery["action"], recovery["reason"]) == (3, "quarantine", "x")
    assert [e["action"] for e in by_kind["handoff"]] == ["start", "result", "capacity"]
    assert by_kind["handoff"][2]["worker"] == "scheduler"
    assert summary(rows) == "1 straggler handed off; the copy won 1 (its original had run 14.2 s without a result)"
    (replay,) = by_kind["replay"]
    assert (replay["origin"], replay["parent_id"], replay["repeat"]) == ("replay", "v2", 0)
    (verdict,) = by_kind["replication"]
    assert verdict["class"] == "environment-specific" and "verdict" not in verdict
    assert verdict_lines([verdict])[1].split() == [
        "ENVIRONMENT-SPECIFIC", "t.py::test_env:", "environment-specific:", "worker:", "fails", "with", "gw1,",
        "passes", "with", "gw0", "[1", "replay]"]
    assert [r["bus_seq"] for r in rows] == list(range(1, 9))


def test_the_rows_go_through_the_store_with_their_columns_and_data(tmp_path: Path) -> None:
    rows = published()
    with Store.open(tmp_path / "s.duckdb") as store:
        TelemetryStore(store).append_events("r1", rows)
        back = TelemetryStore(store).events("r1")
    assert [(e["kind"], e["bus_seq"], e["t"]) for e in back] == [(r["kind"], r["bus_seq"], r["t"]) for r in rows]
    decided = next(e for e in back if e.get("action") == "result")
    assert (decided["worker"], decided["nodeid"], decided["winner_origin"], decided["subject"]) == (
        "gw1", "t.py::test_slow", "speculative", "t.py::test_slow")
    verdict = next(e for e in back if e["kind"] == "replication")
    assert verdict["class"] == "environment-specific" and verdict["differences"]["worker"]["failing"] == ["gw1"]
