"""A sampler thread for the telemetry tests: calls probes every ``interval`` seconds into a
bounded buffer, read with the same ``window``/``samples`` surface as
:class:`testfleet.telemetry.sampler_process.SamplerProcess`.

It lived in ``testfleet.telemetry.sampler`` until the worker moved its sampling to a child
process; only the tests drive probes through it now, so it lives with them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Self

from testfleet.telemetry.sampler import Probe, Sample, window_of

__all__ = ["Sampler"]


class Sampler:
    """Calls every probe each ``interval`` seconds on a daemon thread, into a bounded buffer.

    Samples are stored in time order in a ``deque(maxlen=capacity)`` (the oldest fall out).  A
    probe that raises is skipped for that tick and counted in :attr:`errors`.  Custom metrics
    (:meth:`record_metric`) are stored as their own one-value samples.  The thread measures its own
    CPU time (:attr:`cpu_seconds`, :attr:`overhead`) so the sampler's cost can be checked.
    """

    def __init__(self, probes: list[Probe], interval: float = 0.1, capacity: int = 100_000) -> None:
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.probes = list(probes)
        self.interval = float(interval)
        self.capacity = capacity
        self.errors = 0
        self.last_error: str | None = None
        self.ticks = 0
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self._buffer: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sampler:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("sampler already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="testfleet-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def overhead(self) -> float:
        """The sampler thread's CPU time as a fraction of its running time (1.0 = one core)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def _run(self) -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        next_tick = wall0
        while not self._stop.is_set():
            self.sample_once()
            self.cpu_seconds = time.thread_time() - cpu0
            self.wall_seconds = time.monotonic() - wall0
            next_tick += self.interval
            now = time.monotonic()
            if next_tick < now:  # fell behind (slow probe): skip missed ticks rather than burst
                next_tick = now + self.interval
            self._stop.wait(next_tick - now)
        self.cpu_seconds = time.thread_time() - cpu0
        self.wall_seconds = time.monotonic() - wall0

    # --- writing ---------------------------------------------------------------------------
    def sample_once(self) -> Sample:
        """Read every probe now and store the merged sample (also used by the thread)."""
        values: dict[str, float] = {}
        for probe in self.probes:
            try:
                values.update(probe())
            except Exception as exc:  # noqa: BLE001 - a broken probe must not kill the thread
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
        with self._lock:  # the time is taken under the lock so the buffer stays in time order
            sample = Sample(time.monotonic(), values)
            self._buffer.append(sample)
            self.ticks += 1
        return sample

    def record_metric(self, name: str, value: float) -> None:
        """Store a custom metric value now (``testfleet.metric(name, value)``)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty string, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r} value must be a number, got {type(value).__name__}")
        with self._lock:
            self._buffer.append(Sample(time.monotonic(), {name: float(value)}))

    # --- reading ---------------------------------------------------------------------------
    def window(self, t0: float, t1: float) -> list[Sample]:
        """Samples with ``t0 <= t <= t1``, oldest first."""
        with self._lock:
            return window_of(self._buffer, t0, t1)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._buffer)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buffer)
