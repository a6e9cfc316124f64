"""A run's anomaly watch: which metrics of each result are judged, against what, how strictly.

:class:`RunMonitor` feeds every final result's telemetry summary to a
:class:`~testfleet.telemetry.detect.Detector`, per case and metric, and turns what it flags into
events ready for the store and the run summary. Choices, each for a reason:

* Only metrics that belong to the execution are judged: its duration, the SUT's memory, fds,
  threads and CPU, the worker's memory, scenario latencies and custom metrics. Machine-wide
  metrics (``system.*``) and raw Prometheus series describe everything at once, not the test.
* Each metric is judged on the statistic that shows a problem (``max`` for memory and counts,
  ``mean`` for CPU, ``p95`` for latencies) and with a practical floor: a deviation smaller than the
  floor (50 ms of duration, 5 MB of RSS, 5 ms of p95 latency...) is never an anomaly however
  small the usual spread, because a robust z-score over near-constant series flags noise.
* Baselines start from the same cases' results in earlier runs (:meth:`prime`), so a single
  baseline run can already flag a test whose memory jumped; leak trends use this run's
  executions only, since earlier runs may have tested other code.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from testfleet.telemetry.detect import Anomaly, Detector, RobustBaseline

__all__ = ["WATCHED", "RunMonitor"]

#: (metric pattern, statistic, absolute floor of a deviation worth reporting), first match wins
WATCHED: list[tuple[str, str, float]] = [
    ("duration", "max", 0.05),
    ("sut.rss_mb", "max", 5.0),
    ("sut.fds", "max", 2.0),
    ("sut.threads", "max", 2.0),
    ("sut.cpu_percent", "mean", 20.0),
    ("worker.rss_mb", "max", 10.0),
    ("http.latency_ms", "p95", 5.0),
    ("custom.*", "max", 1e-3),
]
LEAK_METRICS = ("sut.rss_mb", "sut.fds", "worker.rss_mb")


@functools.lru_cache(maxsize=4096)  # called for every metric of every result: fnmatch once per name
def _rule(metric: str) -> tuple[str, float] | None:
    for pattern, stat, floor in WATCHED:
        if fnmatch.fnmatchcase(metric, pattern):
            return stat, floor
    return None


class _FlooredDetector(Detector):
    """A Detector whose baselines get each metric's own absolute floor."""

    def baseline(self, case_id: str, metric: str) -> RobustBaseline:
        key = (case_id, metric)
        found = self._baselines.get(key)
        if found is None:
            rule = _rule(metric)
            found = self._baselines[key] = RobustBaseline(
                self.window, min_history=self.min_history, threshold=self.threshold,
                rel_floor=self.rel_floor, abs_floor=rule[1] if rule else self.abs_floor)
        return found


def judged(summary: Mapping[str, Mapping[str, float]], duration: float | None = None) -> dict[str, dict[str, float]]:
    """The watched metrics of one result, each reduced to its statistic (as ``{"v": x}``)."""
    out: dict[str, dict[str, float]] = {}
    if duration is not None and math.isfinite(duration):
        out["duration"] = {"v": float(duration)}
    for metric, stats in summary.items():
        rule = _rule(metric)
        if rule is None or not isinstance(stats, Mapping):
            continue
        value = stats.get(rule[0])
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[metric] = {"v": float(value)}
    return out


class RunMonitor:
    def __init__(self, *, threshold: float = 4.0, min_history: int = 8, rel_floor: float = 0.10) -> None:
        self.detector = _FlooredDetector(threshold=threshold, min_history=min_history, rel_floor=rel_floor)
        self.anomalies: list[dict[str, Any]] = []
        self._nodeids: dict[str, str] = {}

    def prime(self, history: Mapping[str, Iterable[tuple[Mapping[str, Any], float]]]) -> None:
        """Earlier results per case, oldest first: (telemetry summary, duration) pairs."""
        for case_id, rows in history.items():
            for summary, duration in rows:
                for metric, stats in judged(summary, duration).items():
                    self.detector.baseline(case_id, metric).update(stats["v"])

    def observe(self, *, case_id: str, variant_id: str, nodeid: str, worker: str,
                telemetry: Mapping[str, Mapping[str, float]], duration: float) -> list[dict[str, Any]]:
        self._nodeids[case_id] = nodeid
        found = self.detector.observe(case_id, variant_id, judged(telemetry, duration), stat="v")
        events = [self._event(a, worker) for a in found]
        self.anomalies.extend(events)
        return events

    def reference(self, case_id: str) -> dict[str, list[float]]:
        """The case's baselines as plain data, ``metric -> [median, sigma, threshold]``, for the
        metrics with enough history to be judged: what a worker's mutation engine scores the
        nearness of its execution to an anomaly against."""
        out: dict[str, list[float]] = {}
        for metric, baseline in sorted(self.detector.baselines_of(case_id).items()):
            if len(baseline) < baseline.min_history:
                continue
            median, sigma = baseline.center_spread()
            if math.isfinite(median) and math.isfinite(sigma):
                out[metric] = [median, sigma, baseline.threshold]
        return out

    def finish(self) -> list[dict[str, Any]]:
        """Leak trends over this run's executions of each case (call once, at the end)."""
        events = []
        for case_id in sorted(self._nodeids):
            for metric in LEAK_METRICS:
                leak = self.detector.leaks(case_id, metric)
                if leak is not None:
                    events.append(self._event(leak, ""))
        self.anomalies.extend(events)
        return events

    def _event(self, anomaly: Anomaly, worker: str) -> dict[str, Any]:
        event = anomaly.to_dict()
        event["nodeid"] = self._nodeids.get(anomaly.case_id, "")
        event["worker"] = worker
        return event
