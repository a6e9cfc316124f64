"""Custom metrics from tests: ``testfleet.metric(name, value)``.

A test (or a scenario runner) reports a number it cares about — a queue depth, a cache hit rate,
a request latency — and it is treated like any sampled metric: summarised per execution (mean,
max, p95, delta, count), stored as a time series and watched by the anomaly detectors.

Values go to the *sink* of the current process: a :class:`CustomMetrics` collector that the
testfleet worker installs around each test. Outside a testfleet worker (plain ``pytest``) there
is no sink and :func:`metric` only checks its arguments, so a suite that reports metrics still runs
unchanged under plain pytest.

Names are stored as ``custom.<name>`` unless they already carry one of testfleet's own prefixes
(``http.`` for scenario latencies), so a test cannot shadow ``sut.rss_mb`` by accident. Time
series of custom metrics are bucketed at the sampling interval (the mean of each bucket), since a
load test can report thousands of latencies a second; the per-execution summary uses every value.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

__all__ = ["CustomMetrics", "metric", "metric_name"]

OWN_PREFIXES = ("http.",)

_sink: CustomMetrics | None = None


def metric_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or name.strip() in ("custom.", *OWN_PREFIXES):
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    return name if name.startswith(("custom.", *OWN_PREFIXES)) else f"custom.{name}"


def metric(name: str, value: float) -> None:
    """Record ``value`` for metric ``name`` now, for the test that is running."""
    full = metric_name(name)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"metric {name!r}: value must be a number, got {type(value).__name__}")
    sink = _sink
    if sink is not None:
        sink.add(full, float(value))


def install(sink: CustomMetrics | None) -> CustomMetrics | None:
    """Make ``sink`` the process's collector (None: none); returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


class CustomMetrics:
    """Values reported during one execution, kept in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, list[tuple[float, float]]] = {}

    def add(self, name: str, value: float, t: float | None = None) -> None:
        if not math.isfinite(value):
            return
        stamp = time.monotonic() if t is None else t
        with self._lock:
            self._values.setdefault(name, []).append((stamp, value))

    def take(self) -> dict[str, list[tuple[float, float]]]:
        """Everything recorded since the last take, and start afresh."""
        with self._lock:
            values, self._values = self._values, {}
        return values

    @staticmethod
    def summarize(values: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, pairs in values.items():
            if not pairs:
                continue
            arr = np.fromiter((v for _, v in pairs), dtype=float, count=len(pairs))
            out[name] = {"mean": float(arr.mean()), "max": float(arr.max()),
                         "p95": float(np.percentile(arr, 95)), "delta": float(arr[-1] - arr[0]),
                         "count": float(arr.size)}
        return out

    @staticmethod
    def buckets(values: dict[str, list[tuple[float, float]]], interval: float) -> list[tuple[float, str, float]]:
        """(time, name, mean) per ``interval``-wide bucket: the series that goes to the store."""
        rows: list[tuple[float, str, float]] = []
        for name, pairs in values.items():
            if not pairs:
                continue
            t = np.fromiter((p[0] for p in pairs), dtype=float, count=len(pairs))
            v = np.fromiter((p[1] for p in pairs), dtype=float, count=len(pairs))
            keys = np.floor(t / interval).astype(np.int64)
            uniq, inverse = np.unique(keys, return_inverse=True)
            sums = np.bincount(inverse, weights=v)
            counts = np.bincount(inverse)
            last_t = np.full(len(uniq), -np.inf)
            np.maximum.at(last_t, inverse, t)
            rows.extend((float(ts), name, float(s / c)) for ts, s, c in zip(last_t, sums, counts, strict=True))
        return rows

