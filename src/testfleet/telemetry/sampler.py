"""Background telemetry: probes read metrics, a :class:`Sampler` thread stores timed samples.

A probe is any callable returning ``{flat metric name: value}``.  Three are provided:

* :class:`ProcessProbe` - one process and, by default, its descendants, summed
  (``<prefix>.cpu_percent``, ``.rss_mb``, ``.threads``, ``.fds``, ``.read_bytes``,
  ``.write_bytes``, ``.ctx_switches``, ``.procs``);
* :class:`SystemProbe` - ``system.cpu_percent`` and ``system.mem_percent``;
* :class:`testfleet.telemetry.prometheus.PrometheusProbe` - a SUT's ``/metrics``.

Each test execution's window ``[t0, t1]`` (``time.monotonic()``) is cut out of the sampler with
:meth:`Sampler.window` and reduced with :func:`summarize`.

Counters summed over a tree (I/O bytes, context switches) drop when a child exits, since its
totals leave the sum with it; their ``delta`` is exact only while the tree is stable.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Self

import psutil

__all__ = ["ProcessProbe", "Sample", "Sampler", "SystemProbe", "summarize", "worker_probe"]

Probe = Callable[[], dict[str, float]]

_MB = 1024.0 * 1024.0
_SMALL = 32  # windows up to this many samples are summarised without numpy
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass(frozen=True)
class Sample:
    """Metric values read at one moment ``t`` (``time.monotonic()``)."""

    t: float
    values: dict[str, float] = field(default_factory=dict)


class ProcessProbe:
    """Resource use of process ``pid`` and (``tree=True``) all its descendants, summed.

    ``psutil.Process`` objects are kept across reads, one per pid, because ``cpu_percent``
    measures since the previous call on the same object: a process seen for the first time
    contributes 0 % CPU on that read.  A pid reused by a new process is detected (psutil compares
    creation times) and gets a fresh object.  Descendants are re-listed at most every ``rescan``
    seconds (0 = every read), so a new child is seen within ``rescan`` seconds; exited or zombie
    descendants are skipped.  When the root process has exited (or is a zombie) :meth:`read`
    returns ``{}``; it never raises for processes that vanish.
    """

    def __init__(self, pid: int, prefix: str, *, tree: bool = True, rescan: float = 0.5) -> None:
        self.pid = pid
        self.prefix = prefix
        self.tree = tree
        self.rescan = rescan
        self._scanned_at = -math.inf
        self._procs: dict[int, psutil.Process] = {}
        try:
            self._root: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._root = None
        self.read()  # primes cpu_percent for the processes alive now

    def _members(self) -> list[psutil.Process]:
        root = self._root
        if root is None:
            return []
        try:
            if not root.is_running() or root.status() == psutil.STATUS_ZOMBIE:
                self._root = None
                self._procs.clear()
                return []
            now = time.monotonic()
            if not self.tree:
                found = [root]
            elif now - self._scanned_at >= self.rescan:
                # listing descendants scans every pid on the machine: the dominant cost of a read,
                # so it is done at most every `rescan` seconds; between scans the known members
                # are read (those that exited are skipped)
                found = [root, *root.children(recursive=True)]
                self._scanned_at = now
            else:
                return list(self._procs.values())
        except _GONE:
            self._root = None
            self._procs.clear()
            return []
        members: dict[int, psutil.Process] = {}
        for proc in found:
            known = self._procs.get(proc.pid)
            # Process.__eq__ compares pid and creation time: a reused pid is a new process
            members[proc.pid] = known if known is not None and known == proc else proc
        self._procs = members
        return list(members.values())

    def read(self) -> dict[str, float]:
        members = self._members()
        if not members:
            return {}
        cpu = rss = threads = fds = read_b = write_b = ctx = 0.0
        alive = 0
        for proc in members:
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped
                        raise psutil.ZombieProcess(proc.pid)
                    p_cpu = proc.cpu_percent(None)
                    p_rss = proc.memory_info().rss
                    p_threads = proc.num_threads()
                    p_fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
                    p_ctx = sum(proc.num_ctx_switches())
                    try:
                        io = proc.io_counters()
                        p_read, p_write = io.read_bytes, io.write_bytes
                    except (_GONE + (AttributeError, NotImplementedError)):
                        p_read = p_write = 0
            except _GONE:
                if proc is members[0]:  # the root died between listing and reading
                    return {}
                continue
            alive += 1
            cpu += p_cpu
            rss += p_rss
            threads += p_threads
            fds += p_fds
            ctx += p_ctx
            read_b += p_read
            write_b += p_write
        p = self.prefix
        return {
            f"{p}.cpu_percent": cpu,
            f"{p}.rss_mb": rss / _MB,
            f"{p}.threads": threads,
            f"{p}.fds": fds,
            f"{p}.read_bytes": read_b,
            f"{p}.write_bytes": write_b,
            f"{p}.ctx_switches": ctx,
            f"{p}.procs": float(alive),
        }

    __call__ = read


class SystemProbe:
    """Whole-machine CPU % (since the previous read) and memory %, as ``<prefix>.*``.

    CPU % is computed from this probe's own ``psutil.cpu_times()`` deltas, so it does not share
    ``psutil.cpu_percent``'s module-wide "previous call" with other callers.
    """

    def __init__(self, prefix: str = "system") -> None:
        self.prefix = prefix
        self._last = self._times()

    @staticmethod
    def _times() -> tuple[float, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        return sum(times), idle

    def read(self) -> dict[str, float]:
        total, idle = self._times()
        last_total, last_idle = self._last
        self._last = (total, idle)
        d_total = total - last_total
        busy = 0.0 if d_total <= 0 else max(0.0, min(100.0, 100.0 * (1 - (idle - last_idle) / d_total)))
        return {f"{self.prefix}.cpu_percent": busy,
                f"{self.prefix}.mem_percent": float(psutil.virtual_memory().percent)}

    __call__ = read


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
    def start(self) -> Self:
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


def window_of(buffer: Sequence[Sample], t0: float, t1: float) -> list[Sample]:
    """The samples of a time-ordered buffer with ``t0 <= t <= t1``, oldest first, read from the
    newest end (test windows are recent, buffers long)."""
    out: list[Sample] = []
    for sample in reversed(buffer):
        if sample.t < t0:
            break
        if sample.t <= t1:
            out.append(sample)
    out.reverse()
    return out


def summarize(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Per metric over ``samples`` (in time order): mean, max, p95, delta (last - first), count.

    A metric absent from some samples is summarised over the samples that have it; non-finite
    values are ignored.  p95 uses linear interpolation between order statistics.
    """
    series: dict[str, list[float]] = {}
    for sample in samples:
        for name, value in sample.values.items():
            if math.isfinite(value):
                series.setdefault(name, []).append(value)
    out: dict[str, dict[str, float]] = {}
    for name, values in series.items():
        if len(values) <= _SMALL:  # the usual window (a short test): plain Python is 20x faster
            ordered = sorted(values)
            rank = 0.95 * (len(ordered) - 1)
            low = int(rank)
            high = min(low + 1, len(ordered) - 1)
            p95 = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
            out[name] = {"mean": math.fsum(values) / len(values), "max": ordered[-1], "p95": p95,
                         "delta": values[-1] - values[0], "count": float(len(values))}
            continue
        import numpy as np  # only for long windows: the sampler process stays light

        arr = np.asarray(values, dtype=float)
        out[name] = {
            "mean": float(arr.mean()),
            "max": float(arr.max()),
            "p95": float(np.percentile(arr, 95)),
            "delta": float(arr[-1] - arr[0]),
            "count": float(arr.size),
        }
    return out


def worker_probe(prefix: str = "worker") -> ProcessProbe:
    """The current process alone (its SUT children are measured by their own probe)."""
    return ProcessProbe(os.getpid(), prefix, tree=False)
