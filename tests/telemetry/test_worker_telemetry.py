"""A worker's telemetry against real SUT processes: the bundled inventory service and a tiny
Prometheus exporter. Per-test summaries, the shipped series, restarts, and the environment switch."""

from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

import testfleet
from telemetry.conftest import wait_until as poll_until
from testfleet.execution.protocol import WorkerConfig
from testfleet.execution.sut import SutInstance, SutSpec
from testfleet.execution.worker_telemetry import WorkerTelemetry

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SUT process groups are POSIX")

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "examples" / "inventory" / "inventory_service.py"
PY = shlex.quote(sys.executable)

EXPORTER = """
import sys, time
from prometheus_client import Gauge, start_http_server

Gauge("testfleet_queue_depth", "items waiting in the queue").set(42)
start_http_server(int(sys.argv[1]), addr="127.0.0.1")
while True:
    time.sleep(3600)
"""


def wait_until(predicate, timeout: float = 15.0, step: float = 0.01):
    return poll_until(predicate, timeout, step)


def inventory(tmp_path: Path) -> SutInstance:
    spec = SutSpec(command=f"{PY} {shlex.quote(str(SERVICE))} --port {{port}}",
                   ready={"http": "http://127.0.0.1:{port}/health"}, start_timeout=20.0, grace=3.0)
    return SutInstance(spec, "w1", tmp_path)


def samples_after(telemetry: WorkerTelemetry, t: float, metric: str):
    return [s for s in telemetry.sampler.window(t, math.inf) if s.t > t and metric in s.values]


def test_a_test_window_summarises_sut_worker_system_and_custom_metrics(tmp_path: Path) -> None:
    sut = inventory(tmp_path)
    info = sut.start()
    telemetry = None
    try:
        telemetry = WorkerTelemetry(interval=0.02).start()
        t0 = telemetry.begin()
        with httpx.Client(base_url=info.base_url, timeout=5) as client:
            for i in range(5):
                created = client.post("/items", json={"name": f"bolt-{i}", "quantity": 3, "price": 1.5})
                assert created.status_code == 201
            assert client.get("/items").json()["total"] == 5
        testfleet.metric("depth", 3)
        wait_until(lambda: samples_after(telemetry, t0, "sut.rss_mb"))
        summary = telemetry.end(t0)

        for name in ("sut.rss_mb", "sut.cpu_percent", "worker.rss_mb", "system.cpu_percent"):
            assert name in summary, sorted(summary)
            assert set(summary[name]) == {"mean", "max", "p95", "delta", "count"}
            assert summary[name]["count"] >= 1
        assert summary["custom.depth"] == {"mean": 3.0, "max": 3.0, "p95": 3.0, "delta": 0.0,
                                           "count": 1.0}
        # the SUT's memory is the service's own, not the worker's
        actual = psutil.Process(info.pid).memory_info().rss / 2**20
        assert summary["sut.rss_mb"]["max"] == pytest.approx(actual, rel=0.5)
        worker = psutil.Process().memory_info().rss / 2**20
        assert summary["worker.rss_mb"]["max"] == pytest.approx(worker, rel=0.5)
        assert 0 <= summary["system.cpu_percent"]["mean"] <= 100

        # a metric reported between tests belongs to no test
        testfleet.metric("depth", 99)
        t1 = telemetry.begin()
        assert "custom.depth" not in telemetry.end(t1)
    finally:
        if telemetry is not None:
            telemetry.close()
        sut.stop()


def test_take_series_ships_each_sample_once_with_wall_clock_times(tmp_path: Path) -> None:
    sut = inventory(tmp_path)
    sut.start()
    telemetry = None
    try:
        telemetry = WorkerTelemetry(interval=0.02).start()
        t0 = telemetry.begin()
        testfleet.metric("depth", 3)
        wait_until(lambda: len(samples_after(telemetry, t0, "sut.rss_mb")) >= 2)
        telemetry.end(t0)

        first = telemetry.take_series()
        now = time.time()
        assert len(first["t"]) == len(first["metric"]) == len(first["value"]) > 0
        assert all(abs(t - now) < 10 for t in first["t"])
        assert {"sut.rss_mb", "worker.rss_mb", "system.cpu_percent", "custom.depth"} <= set(first["metric"])
        assert [v for m, v in zip(first["metric"], first["value"], strict=True) if m == "custom.depth"] == [3.0]
        assert all(math.isfinite(v) for v in first["value"])

        def sampled(columns):
            return sorted(t for t, m in zip(columns["t"], columns["metric"], strict=True)
                          if m == "worker.rss_mb")

        shipped = sampled(first)
        assert len(shipped) == len(set(shipped))  # one row per sample and metric
        last_shipped = telemetry.sampler.samples()[-1].t
        wait_until(lambda: samples_after(telemetry, last_shipped, "worker.rss_mb"))
        second = telemetry.take_series()
        assert len(second["t"]) == len(second["metric"]) == len(second["value"]) > 0
        assert "custom.depth" not in second["metric"]  # custom rows ship once too
        newer = sampled(second)
        assert newer and min(newer) > max(shipped)
        assert all(abs(t - time.time()) < 10 for t in second["t"])
    finally:
        if telemetry is not None:
            telemetry.close()
        sut.stop()


def test_sut_metrics_follow_a_restarted_instance(tmp_path: Path) -> None:
    sut = inventory(tmp_path)
    first = sut.start()
    telemetry = None
    try:
        telemetry = WorkerTelemetry(interval=0.02).start()
        telemetry.begin()  # the worker tells its sampler process the current SUT pids per test
        wait_until(lambda: samples_after(telemetry, 0.0, "sut.rss_mb"))
        sut.stop()
        telemetry.begin()
        stopped = time.monotonic()
        # with the SUT gone, new samples carry no sut.* at all (the first sample stamped after
        # the stop may have read the SUT just before it died: only the later ones are judged)
        wait_until(lambda: len(samples_after(telemetry, stopped, "worker.rss_mb")) >= 3)
        after_stop = [s for s in telemetry.sampler.window(stopped, math.inf) if s.t > stopped][1:]
        assert after_stop and not any(k.startswith("sut.") for s in after_stop for k in s.values)

        second = sut.start()
        assert second.pid != first.pid
        telemetry.begin()
        started = time.monotonic()
        [sample, *_] = wait_until(lambda: samples_after(telemetry, started, "sut.rss_mb"))
        actual = psutil.Process(second.pid).memory_info().rss / 2**20
        assert sample.values["sut.rss_mb"] == pytest.approx(actual, rel=0.5)
        assert sample.values["sut.procs"] == 1.0

        t0 = telemetry.begin()
        wait_until(lambda: samples_after(telemetry, t0, "sut.rss_mb"))
        assert "sut.rss_mb" in telemetry.end(t0)
    finally:
        if telemetry is not None:
            telemetry.close()
        sut.stop()


def test_prometheus_metrics_of_the_sut_are_in_the_summary(tmp_path: Path) -> None:
    script = tmp_path / "exporter.py"
    script.write_text(EXPORTER)
    spec = SutSpec(command=f"{PY} {shlex.quote(str(script))} {{port}}", ready={"tcp": "{port}"},
                   metrics="http://127.0.0.1:{port}/metrics", start_timeout=20.0, grace=3.0)
    sut = SutInstance(spec, "prom", tmp_path)
    info = sut.start()
    telemetry = None
    try:
        assert sut.metrics_url() == f"http://127.0.0.1:{info.port}/metrics"
        telemetry = WorkerTelemetry(interval=0.02, metrics_interval=0.05).start()
        t0 = telemetry.begin()
        wait_until(lambda: samples_after(telemetry, t0, "prom.testfleet_queue_depth"))
        summary = telemetry.end(t0)
        assert summary["prom.testfleet_queue_depth"]["max"] == 42.0
        assert summary["prom.testfleet_queue_depth"]["mean"] == 42.0
        assert "sut.rss_mb" in summary  # the exporter is sampled as a process too
        series = telemetry.take_series()
        assert 42.0 in [v for m, v in zip(series["metric"], series["value"], strict=True)
                        if m == "prom.testfleet_queue_depth"]
    finally:
        if telemetry is not None:
            telemetry.close()
        sut.stop()


def test_close_restores_the_previous_metric_sink(tmp_path: Path) -> None:
    telemetry = WorkerTelemetry(interval=0.02).start()
    try:
        t0 = telemetry.begin()
        testfleet.metric("depth", 1)
    finally:
        telemetry.close()
    assert not telemetry.sampler.running
    testfleet.metric("depth", 5)  # after close: goes nowhere
    assert telemetry.end(t0)["custom.depth"]["count"] == 1.0


@pytest.mark.parametrize(("config", "interval", "metrics"), [
    (WorkerConfig(), 0.1, 1.0),
    (WorkerConfig(telemetry_interval=0.25, metrics_interval=2.0), 0.25, 2.0),
    (WorkerConfig(telemetry_interval=0.5, metrics_interval=math.nan), 0.5, 1.0),
    (WorkerConfig(telemetry_interval=0.5, metrics_interval=0.0), 0.5, 1.0),
    (WorkerConfig(telemetry_interval=2.0, metrics_interval=0.5), 2.0, 2.0),
])
def test_from_config_reads_the_interval(config: WorkerConfig, interval: float, metrics: float) -> None:
    telemetry = WorkerTelemetry.from_config(config.telemetry_interval, config.metrics_interval)
    assert telemetry is not None
    assert telemetry.interval == interval  # the sampler process starts with start()
    assert telemetry.metrics_interval == metrics  # nonsense: 1 s; never more often than a sample
    assert telemetry.sampler is None  # nothing runs before start()


@pytest.mark.parametrize("off", [0.0, -0.0, -1.0, math.nan, math.inf])
def test_from_config_zero_or_nonsense_numbers_switch_telemetry_off(off: float) -> None:
    assert WorkerTelemetry.from_config(off) is None
