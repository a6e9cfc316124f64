"""Telemetry inside a worker: a background sampler while variants run, a summary per result.

One :class:`WorkerTelemetry` lives in each worker process (created by the worker plugin when the
run's ``telemetry_interval`` is > 0). Its :class:`~testfleet.telemetry.sampler.Sampler` thread reads,
every interval:

* the worker process itself (``worker.*``) and the machine (``system.*``);
* the SUT instances this process started (``sut.*``: the instance's whole process tree), found
  through :func:`testfleet.execution.sut.active_instances`, so a restarted SUT (new pid) is
  followed without anyone telling the sampler;
* the SUT's Prometheus endpoint (``prom.*``) when ``[tool.testfleet.sut] metrics`` names one,
  scraped every ``metrics_interval`` seconds (a scrape costs far more than a psutil read).

Around each test :meth:`begin` and :meth:`end` cut the window out of the sampler: the result's
summary is computed over the samples inside the window plus the last one before it (the state the
test started from), so a test shorter than the interval still gets a summary at no extra cost;
custom metrics reported during the test (``testfleet.metric``) are summarised from every value.
:meth:`take_series` hands over the new samples as columns (wall-clock seconds, metric, value) to
ship with the result; the coordinator writes them to the store.
"""

from __future__ import annotations

import math
import time
from typing import Any

from testfleet.execution.sut import active_instances
from testfleet.telemetry import custom
from testfleet.telemetry.prometheus import PrometheusProbe
from testfleet.telemetry.sampler import (
    ProcessProbe,
    Sample,
    Sampler,
    SystemProbe,
    summarize,
    worker_probe,
)

__all__ = ["WorkerTelemetry"]

ENV_INTERVAL = "TESTFLEET_TELEMETRY_INTERVAL"


class _SutProbe:
    """``sut.*`` of the SUT instances of this process, following restarts (new pids)."""

    def __init__(self) -> None:
        self._probes: dict[int, ProcessProbe] = {}

    def __call__(self) -> dict[str, float]:
        instances = [inst for inst in active_instances() if inst.pid is not None]
        pids = {inst.pid for inst in instances}
        for pid in list(self._probes):
            if pid not in pids:
                del self._probes[pid]
        out: dict[str, float] = {}
        for inst in instances:
            assert inst.pid is not None
            probe = self._probes.get(inst.pid)
            if probe is None:
                probe = self._probes[inst.pid] = ProcessProbe(inst.pid, "sut")
            for name, value in probe().items():  # several instances in one process: summed
                out[name] = out.get(name, 0.0) + value
        return out


class _MetricsProbe:
    """``prom.*`` from the instances' ``/metrics``, at most every ``every`` seconds."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._probes: dict[str, PrometheusProbe] = {}
        self._next = 0.0

    def __call__(self) -> dict[str, float]:
        now = time.monotonic()
        if now < self._next:
            return {}
        self._next = now + self.every
        out: dict[str, float] = {}
        urls = {url for inst in active_instances() if (url := inst.metrics_url()) is not None}
        for url in list(self._probes):
            if url not in urls:
                self._probes.pop(url).close()
        for url in sorted(urls):
            probe = self._probes.get(url)
            if probe is None:
                probe = self._probes[url] = PrometheusProbe(url, timeout=max(0.2, min(2.0, self.every)))
            out.update(probe())
        return out

    def close(self) -> None:
        for probe in self._probes.values():
            probe.close()
        self._probes.clear()


class WorkerTelemetry:
    def __init__(self, interval: float = 0.1, *, metrics_interval: float = 1.0) -> None:
        self.interval = interval
        self._metrics = _MetricsProbe(metrics_interval)
        self.sampler = Sampler([worker_probe(), SystemProbe(), _SutProbe(), self._metrics], interval)
        self.custom = custom.CustomMetrics()
        self._wall_offset = time.time() - time.monotonic()
        self._shipped_until = -math.inf
        self._custom_rows: list[tuple[float, str, float]] = []
        self._previous_sink: custom.CustomMetrics | None = None

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> WorkerTelemetry | None:
        """The worker's telemetry as the coordinator asked for it (None: switched off)."""
        text = environ.get(ENV_INTERVAL, "0.1")
        try:
            interval = float(text)
        except ValueError:
            interval = 0.1
        if not math.isfinite(interval) or interval <= 0:
            return None
        metrics_every = max(interval, _float(environ.get("TESTFLEET_METRICS_INTERVAL"), 1.0))
        return cls(interval, metrics_interval=metrics_every)

    def start(self) -> WorkerTelemetry:
        self._previous_sink = custom.install(self.custom)
        self.sampler.start()
        return self

    def close(self) -> None:
        self.sampler.stop()
        self._metrics.close()
        custom.install(self._previous_sink)

    # -- per test ----------------------------------------------------------------------------
    def begin(self) -> float:
        self.custom.take()  # values reported between tests belong to no test
        return time.monotonic()

    def end(self, t0: float) -> dict[str, dict[str, float]]:
        t1 = time.monotonic()
        samples = self._window_with_start(t0, t1)
        summary = summarize(samples)
        reported = self.custom.take()
        summary.update(custom.CustomMetrics.summarize(reported))
        self._custom_rows.extend(custom.CustomMetrics.buckets(reported, self.interval))
        return summary

    def _window_with_start(self, t0: float, t1: float) -> list[Sample]:
        samples = self.sampler.window(t0 - 3 * self.interval, t1)
        inside = [s for s in samples if t0 <= s.t <= t1]
        before = [s for s in samples if s.t < t0]
        if not inside and active_instances() and not (before and "sut.rss_mb" in before[-1].values):
            # a short test that started the SUT itself: the last sample predates the SUT, so
            # read once now rather than give the result no sut.* summary
            inside = [self.sampler.sample_once()]
        return ([before[-1]] if before else []) + inside

    # -- series ------------------------------------------------------------------------------
    def take_series(self) -> dict[str, list[Any]]:
        """New samples since the last call, as columns: ``t`` (epoch seconds), ``metric``, ``value``."""
        t: list[float] = []
        metric: list[str] = []
        value: list[float] = []
        newest = self._shipped_until
        for sample in self.sampler.window(self._shipped_until, math.inf):
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
        return self.sampler.overhead


def _float(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default

