"""How often each worker samples telemetry when workers outnumber CPUs (issue 15, item 2)."""

from __future__ import annotations

import pytest

from testfleet.execution.worker_telemetry import WorkerTelemetry, fleet_interval


@pytest.mark.parametrize(("workers", "cpus", "expected"), [
    (1, 16, 0.1), (2, 2, 0.1), (4, 2, 0.2), (100, 2, 5.0),
])
def test_the_fleet_samples_no_more_often_than_one_worker_per_cpu(workers: int, cpus: int, expected: float) -> None:
    assert fleet_interval(0.1, workers, cpus) == pytest.approx(expected)


def test_a_worker_reads_the_fleet_size_from_its_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    telemetry = WorkerTelemetry.from_config(0.1, workers=100)
    assert telemetry is not None
    assert telemetry.interval == pytest.approx(5.0)
    assert telemetry.metrics_interval >= telemetry.interval  # a scrape never more often than a sample
    assert WorkerTelemetry.from_config(0.0, workers=100) is None
