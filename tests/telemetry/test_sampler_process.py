"""The sampler child and the worker's side of its pipe: no thread in the worker, nothing lost
while the worker is busy in a long test and does not read."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from testfleet.telemetry.sampler_process import SamplerProcess

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the sampler child is forked")


def test_sampler_process_starts_no_thread_in_the_worker() -> None:
    # a reader thread woken by every sample took the GIL from the test thread between results
    before = set(threading.enumerate())
    sampler = SamplerProcess(0.01)
    try:
        deadline = time.monotonic() + 10
        while not sampler.samples() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.samples(), "the child sent no sample in 10 s"
        assert set(threading.enumerate()) == before
    finally:
        sampler.stop()


def test_samples_taken_while_the_worker_does_not_read_arrive_in_full_later() -> None:
    # a long test: nobody drains the pipe while it runs; 1 ms samples overflow its 64 KiB
    # within a second, and the child must go on sampling and send the rest when read
    sampler = SamplerProcess(0.001)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            time.sleep(0.05)  # busy elsewhere: no call into the sampler
        t1 = time.monotonic()
        deadline = time.monotonic() + 10
        while sampler.newest < t1 - 0.1 and time.monotonic() < deadline:
            time.sleep(0.01)
        window = sampler.window(t0, t1)
        assert sum(len(repr(s.values)) for s in window) > 64 * 1024  # more than a pipe holds
        gaps = [b.t - a.t for a, b in zip(window, window[1:])]
        assert window[0].t - t0 < 0.5 and t1 - window[-1].t < 0.5  # a loaded machine
        assert max(gaps) < 0.5, "the child stopped sampling while its pipe was full"
    finally:
        sampler.stop()


def test_stop_collects_the_samples_the_child_still_held() -> None:
    sampler = SamplerProcess(0.001)
    time.sleep(1.0)  # the pipe fills; the child holds the rest
    t_stop = time.monotonic()
    sampler.stop()
    assert not sampler.running
    assert sampler.samples()[-1].t > t_stop - 0.5


def test_a_stream_of_fast_tests_costs_the_sampler_no_more_samples_than_its_ticks() -> None:
    # a start mark per interval / 4 made the child sample 4x as often as it ticks (~0.5 ms of
    # CPU each) for fast tests, whose windows take no start sample
    from testfleet.execution.worker_telemetry import WorkerTelemetry

    interval = 0.05
    telemetry = WorkerTelemetry(interval).start()
    try:
        assert telemetry.sampler is not None
        deadline = time.monotonic() + 10
        while telemetry.sampler.newest == -float("inf") and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            start = telemetry.begin()
            sum(range(1000))  # a test of ~0.05 ms
            summary = telemetry.end(start)
            assert "worker.rss_mb" in summary
        t1 = time.monotonic()
        taken = len(telemetry.sampler.window(t0, t1))
        assert taken <= 1.5 * (t1 - t0) / interval + 2, f"{taken} samples in {t1 - t0:.2f} s"
    finally:
        telemetry.close()
