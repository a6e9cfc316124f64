"""Telemetry inside a worker: a sampler process while variants run, a summary per result.

One :class:`WorkerTelemetry` lives in each worker process (created by the worker session from its
WorkerConfig when the run's ``telemetry_interval`` is > 0). It starts a
:class:`~testfleet.telemetry.sampler_process.SamplerProcess` (a child process, so sampling never
competes for the worker's GIL) that reads, every interval:

* the worker process itself (``worker.*``) and the machine (``system.*``);
* the SUT instances this process started (``sut.*``: the instance's whole process tree); before
  and after each test the worker tells the child which pids are current
  (:func:`testfleet.execution.sut.active_instances`), so a restarted SUT is followed;
* the SUT's Prometheus endpoint (``prom.*``) when ``[tool.testfleet.sut] metrics`` names one,
  scraped every ``metrics_interval`` seconds (a scrape costs far more than a psutil read).

Around each test :meth:`begin` and :meth:`end` cut the window out of the samples. A sample's CPU %
covers the time since the sample before it, so the edges matter: :meth:`begin` asks the child for
a sample at the test's start (unless one is fresh), and a test of 50 ms or more waits for one taken
at its end (a ~1 ms round trip); its summary is the samples inside that window. A shorter test
gets the samples inside its window plus the last one before it, at no extra cost;
custom metrics reported during the test (``testfleet.metric``) are summarised from every value.
After a test shorter than 5 ms the start mark is sent only when a tick is late, so a stream of fast
tests costs the child no more samples than its ticks.
:meth:`take_series` hands over the new samples as columns (wall-clock seconds, metric, value) to
ship with the result; the coordinator writes them to the store.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from testfleet.execution.protocol import Series
from testfleet.execution.sut import active_instances
from testfleet.telemetry import custom
from testfleet.telemetry.sampler import (
    ProcessProbe,
    Sample,
    SystemProbe,
    summarize,
    worker_probe,
)
from testfleet.telemetry.sampler_process import SamplerProcess

__all__ = ["WorkerTelemetry"]

MARK_AT_END = 0.05  # tests at least this long get a sample at their end (a ~1 ms round trip)
FAST_TEST = 0.005  # after a test this short, the next one's start is marked only if a tick is late


class WorkerTelemetry:
    def __init__(self, interval: float = 0.1, *, metrics_interval: float = 1.0) -> None:
        self.interval = interval
        self.metrics_interval = metrics_interval
        self.sampler: SamplerProcess | None = None
        self._here: tuple[Any, Any] | None = None  # in-process probes, until the first sample
        self._start_mark: int | None = None
        self._last_duration = math.inf  # of the test before: a stream of fast tests marks less
        self.custom = custom.CustomMetrics()
        self._wall_offset = time.time() - time.monotonic()
        self._shipped_until = -math.inf
        self._custom_rows: list[tuple[float, str, float]] = []
        self._previous_sink: custom.CustomMetrics | None = None
        self._summarized: list[Sample] = []  # the last window summarised, and its summary
        self._summary: dict[str, dict[str, float]] = {}

    @classmethod
    def from_config(cls, interval: float, metrics_interval: float = 1.0, *,
                    workers: int = 1) -> WorkerTelemetry | None:
        """The worker's telemetry as its WorkerConfig asks for it (None: switched off)."""
        if not math.isfinite(interval) or interval <= 0:
            return None
        interval = fleet_interval(interval, workers)
        metrics_every = max(interval, metrics_interval if math.isfinite(metrics_interval)
                            and metrics_interval > 0 else 1.0)
        return cls(interval, metrics_interval=metrics_every)

    def start(self) -> WorkerTelemetry:
        self._previous_sink = custom.install(self.custom)
        self.sampler = SamplerProcess(self.interval, metrics_interval=self.metrics_interval)
        return self

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        custom.install(self._previous_sink)

    def _watch(self) -> list[int]:
        """Tell the sampler process which SUT processes to read (instances start and restart);
        their pids."""
        running = [(pid, inst) for inst in active_instances() if (pid := inst.pid) is not None]
        pids = [pid for pid, _inst in running]
        if self.sampler is not None:
            self.sampler.watch(pids, [url for _pid, inst in running
                                      if (url := inst.metrics_url()) is not None])
        return pids

    # -- per test ----------------------------------------------------------------------------
    def begin(self) -> float:
        self.custom.take()  # values reported between tests belong to no test
        self._watch()
        now = time.monotonic()
        self._start_mark = None
        # rates start here; when a sample is fresh the child would skip the mark anyway. In a
        # stream of fast tests a mark every interval / 4 made the child sample 4x as often (its
        # psutil reads: ~0.5 ms of CPU each, a wake-up that preempts the worker on a busy
        # machine) for windows that take no start sample; there only a late tick is marked, and
        # the first long test after such a stream has rates from the last tick (< interval ago)
        fresh = self.interval if self._last_duration < FAST_TEST else self.interval / 4
        if self.sampler is not None and now - self.sampler.newest >= fresh:
            mark = self.sampler.mark()  # without reply: the mark's number (None: not sent)
            self._start_mark = mark if isinstance(mark, int) else None
        return time.monotonic()

    def end(self, t0: float) -> dict[str, dict[str, float]]:
        t1 = time.monotonic()
        self._last_duration = t1 - t0
        samples = self._window_with_start(t0, t1)
        if len(samples) == len(self._summarized) and all(a is b for a, b in zip(samples, self._summarized)):
            # the same samples as the test before (fast tests between two ticks): same summary
            summary = dict(self._summary)
        else:
            summary = summarize(samples)
            self._summarized, self._summary = samples, dict(summary)
        reported = self.custom.take()
        summary.update(custom.CustomMetrics.summarize(reported))
        self._custom_rows.extend(custom.CustomMetrics.buckets(reported, self.interval))
        return summary

    def _read_here(self, sut_pids: list[int]) -> dict[str, float]:
        if self._here is None:
            self._here = (worker_probe(), SystemProbe())
        values = {**self._here[0](), **self._here[1]()}
        for pid in sut_pids:
            values.update(ProcessProbe(pid, "sut").read())
        return values

    def _window_with_start(self, t0: float, t1: float) -> list[Sample]:
        assert self.sampler is not None
        if t1 - t0 >= MARK_AT_END:
            # long enough to pay a round trip (~1 ms): a sample taken now closes the window, so
            # the CPU of the test's last moments is the test's, not the next one's
            closing = self.sampler.mark(reply=True)
            t1 = closing.t if isinstance(closing, Sample) else t1
        samples = self.sampler.window(t0 - 3 * self.interval, t1)
        inside = [s for s in samples if t0 <= s.t <= t1]
        before = [s for s in samples if s.t < t0]
        if t1 - t0 >= MARK_AT_END:
            start = self.sampler.marked(self._start_mark) if self._start_mark else None
            if start is not None:  # its rates describe the time before the test started
                inside = [s for s in inside if s.t != start.t]
            if inside:
                before = []
        sut_pids = self._watch()
        if not before and not inside:
            # the sampler process has not sent its first sample yet (it starts with the worker):
            # read here once rather than leave the result without telemetry
            inside = [Sample(time.monotonic(), self._read_here(sut_pids))]
        elif not any("sut.rss_mb" in s.values for s in ([*before[-1:], *inside])) and sut_pids:
            # a short test that started the SUT itself: no sample has seen the SUT yet, so
            # read it once here rather than give the result no sut.* summary
            values: dict[str, float] = {}
            for pid in sut_pids:
                values.update(ProcessProbe(pid, "sut").read())
            inside = [*inside, Sample(time.monotonic(), values)]
        return ([before[-1]] if before else []) + inside

    # -- series ------------------------------------------------------------------------------
    def take_series(self) -> Series:
        """New samples since the last call, as columns: ``t`` (epoch seconds), ``metric``, ``value``."""
        t: list[float] = []
        metric: list[str] = []
        value: list[float] = []
        newest = self._shipped_until
        samples = self.sampler.window(self._shipped_until, math.inf) if self.sampler else []
        for sample in samples:
            if sample.t <= self._shipped_until:
                continue
            newest = max(newest, sample.t)
            wall = sample.t + self._wall_offset
            for name, v in sample.values.items():
                if math.isfinite(v):
                    t.append(wall)
                    metric.append(name)
                    value.append(v)
        self._shipped_until = newest
        for ts, name, v in self._custom_rows:
            t.append(ts + self._wall_offset)
            metric.append(name)
            value.append(v)
        self._custom_rows = []
        return {"t": t, "metric": metric, "value": value}

    @property
    def overhead(self) -> float:
        return self.sampler.overhead if self.sampler is not None else 0.0


def fleet_interval(interval: float, workers: int, cpus: int | None = None) -> float:
    """The sampling period of each worker: ``interval``, stretched when there are more workers
    than CPUs so that the fleet as a whole samples no more often than ``cpus`` workers would.

    Every worker has its own sampler (~1 ms of CPU a sample): 100 workers on 2 CPUs sampling
    every 0.1 s took ~40 % of the machine from the tests. Tests of 50 ms or more still get a
    sample at their start and end (:meth:`WorkerTelemetry.begin` / ``end``)."""
    cpus = cpus or os.cpu_count() or 1
    return interval * max(1.0, workers / cpus)

