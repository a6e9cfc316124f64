"""The run's anomaly watch: which statistic of which metric is judged, baselines primed from earlier
runs, practical floors, and leak trends over one run's executions."""

from __future__ import annotations

import numpy as np
import pytest

from testfleet.telemetry.monitor import RunMonitor, judged

CASE = "case-1"
NODEID = "tests/test_api.py::test_orders"


def stats(mean: float, max_: float | None = None, p95: float | None = None) -> dict[str, float]:
    return {"mean": mean, "max": mean if max_ is None else max_, "p95": mean if p95 is None else p95,
            "delta": 0.0, "count": 5.0}


def test_judged_picks_the_statistic_per_metric_and_ignores_machine_wide_series() -> None:
    summary = {
        "sut.rss_mb": stats(40.0, max_=44.0, p95=43.0),
        "sut.cpu_percent": stats(12.0, max_=90.0, p95=80.0),
        "http.latency_ms": stats(5.0, max_=50.0, p95=20.0),
        "custom.depth": stats(2.0, max_=7.0, p95=6.0),
        "worker.rss_mb": stats(60.0, max_=61.0),
        "system.cpu_percent": stats(50.0, max_=100.0),
        "system.mem_percent": stats(30.0),
        "prom.requests_total": stats(100.0, max_=120.0),
        "sut.read_bytes": stats(1.0, max_=2.0),  # sampled, but not watched
    }
    assert judged(summary, 0.25) == {
        "duration": {"v": 0.25},
        "sut.rss_mb": {"v": 44.0},
        "sut.cpu_percent": {"v": 12.0},
        "http.latency_ms": {"v": 20.0},
        "custom.depth": {"v": 7.0},
        "worker.rss_mb": {"v": 61.0},
    }


def test_judged_without_a_usable_duration_or_statistic() -> None:
    assert judged({}, None) == {}
    assert judged({}, float("nan")) == {}
    assert judged({"sut.rss_mb": {"mean": 3.0}, "custom.x": {"max": float("inf")}}, None) == {}


def history(values: list[float], duration: float = 0.1) -> dict[str, list[tuple[dict, float]]]:
    return {CASE: [({"sut.rss_mb": stats(v - 1.0, max_=v)}, duration) for v in values]}


def observe(monitor: RunMonitor, rss: float, *, duration: float = 0.1, variant: str = "v-9",
            worker: str = "gw3", extra: dict | None = None) -> list[dict]:
    telemetry = {"sut.rss_mb": stats(rss - 1.0, max_=rss), **(extra or {})}
    return monitor.observe(case_id=CASE, variant_id=variant, nodeid=NODEID, worker=worker,
                           telemetry=telemetry, duration=duration)


def test_a_memory_jump_after_primed_history_is_an_outlier_event() -> None:
    rng = np.random.default_rng(7)
    monitor = RunMonitor()
    monitor.prime(history(list(40.0 + rng.normal(0, 0.3, 12))))
    assert observe(monitor, 41.0) == []  # within the usual spread
    events = observe(monitor, 100.0, variant="v-jump", worker="gw1")
    assert len(events) == 1, events
    event = events[0]
    assert event["kind"] == "outlier"
    assert event["metric"] == "sut.rss_mb" and event["value"] == 100.0
    assert event["baseline"] == pytest.approx(40.0, abs=1.0)
    assert event["variant_id"] == "v-jump" and event["case_id"] == CASE
    assert event["nodeid"] == NODEID and event["worker"] == "gw1"
    assert event["score"] >= 4.0 and "sut.rss_mb" in event["message"]
    assert monitor.anomalies == events


@pytest.mark.parametrize("rel_floor", [0.10, 0.0])
def test_a_deviation_below_the_metric_floor_is_not_flagged(rel_floor: float) -> None:
    # the spread is tiny (0.01 MB), so a robust z without the 5 MB floor would be huge
    rng = np.random.default_rng(3)
    monitor = RunMonitor(rel_floor=rel_floor)
    monitor.prime(history(list(40.0 + rng.normal(0, 0.01, 12))))
    assert observe(monitor, 43.0) == []
    assert observe(monitor, 44.5) == []
    assert monitor.anomalies == []


def test_the_floor_is_per_metric() -> None:
    # the same 40 -> 43 step is an anomaly for a custom metric, whose floor is 1e-3
    rng = np.random.default_rng(3)
    noise = 40.0 + rng.normal(0, 0.01, 12)
    monitor = RunMonitor(rel_floor=0.0)
    monitor.prime({CASE: [({"sut.rss_mb": stats(v, max_=v), "custom.depth": stats(v, max_=v)}, 0.1)
                          for v in noise]})
    events = observe(monitor, 43.0, extra={"custom.depth": stats(43.0)})
    assert [e["metric"] for e in events] == ["custom.depth"]


def test_nothing_is_flagged_before_min_history() -> None:
    short = RunMonitor(min_history=8)
    short.prime(history([40.0, 40.1, 39.9, 40.0, 40.2, 39.8, 40.0]))  # 7 earlier results
    assert observe(short, 100.0) == []
    enough = RunMonitor(min_history=8)
    enough.prime(history([40.0, 40.1, 39.9, 40.0, 40.2, 39.8, 40.0, 40.1]))
    assert [e["metric"] for e in observe(enough, 100.0)] == ["sut.rss_mb"]


def test_priming_is_per_case() -> None:
    monitor = RunMonitor()
    monitor.prime(history([40.0] * 12))
    events = monitor.observe(case_id="other-case", variant_id="v", nodeid="t::other", worker="gw0",
                             telemetry={"sut.rss_mb": stats(100.0)}, duration=0.1)
    assert events == []


def test_a_slow_execution_is_flagged_on_its_duration() -> None:
    monitor = RunMonitor()
    monitor.prime(history([40.0] * 10, duration=0.1))
    events = observe(monitor, 40.0, duration=2.0)
    assert [(e["metric"], e["value"]) for e in events] == [("duration", 2.0)]


def run_case(monitor: RunMonitor, values: np.ndarray) -> None:
    for i, v in enumerate(values):
        observe(monitor, float(v), variant=f"v-{i}")


def test_steady_growth_over_a_run_is_reported_as_a_leak() -> None:
    rng = np.random.default_rng(11)
    monitor = RunMonitor()
    run_case(monitor, 40.0 + 1.5 * np.arange(20) + rng.normal(0, 0.3, 20))
    leaks = monitor.finish()
    assert len(leaks) == 1, leaks
    leak = leaks[0]
    assert leak["kind"] == "leak" and leak["metric"] == "sut.rss_mb"
    assert leak["case_id"] == CASE and leak["nodeid"] == NODEID
    assert leak["spread"] == pytest.approx(1.5, abs=0.2)  # Theil-Sen slope per execution
    assert leak["variant_id"] == "v-19"
    assert leak in monitor.anomalies


def test_flat_noisy_memory_is_not_a_leak() -> None:
    rng = np.random.default_rng(11)
    monitor = RunMonitor()
    run_case(monitor, 40.0 + rng.normal(0, 1.0, 20))
    assert monitor.finish() == []
    assert monitor.anomalies == []
