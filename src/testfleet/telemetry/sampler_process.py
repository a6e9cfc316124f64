"""The telemetry sampler as a child process, so sampling never competes for the worker's GIL.

A sampler *thread* inside a busy worker costs far more than its own CPU time: psutil reads
``/proc`` files in Python and releases the GIL around each read, so every read forces the test
thread to hand the GIL over and take it back (measured: +20 % wall time for an async HTTP load
at 10 samples/s, with the thread itself using 6 % of a core). In a process of its own the same
probes cost only their CPU time.

Protocol (JSON lines): the parent writes ``{"sut": [pid, ...], "metrics": [url, ...]}`` to the
child's stdin whenever the SUT instances change; the child writes ``[t, {metric: value}]`` to its
stdout each interval, ``t`` being ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every
process on the machine, so samples line up with the parent's test windows). The child exits when
its stdin closes or its parent is gone. :class:`SamplerProcess` is the parent's side and offers
the reading surface of :class:`~testfleet.telemetry.sampler.Sampler` (``window``, ``samples``,
``sample_once`` is not offered: a child's sample cannot be forced synchronously).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from typing import IO, Any

import psutil

from testfleet.telemetry.sampler import ProcessProbe, Sample, SystemProbe

__all__ = ["SamplerProcess"]

_RESCAN = 2.0  # seconds between listings of the SUT's descendants (a scan reads every pid's stat)


class SamplerProcess:
    """Starts the child and collects its samples on a reader thread (asleep between lines)."""

    def __init__(self, interval: float, *, worker_pid: int | None = None,
                 metrics_interval: float = 1.0, capacity: int = 100_000) -> None:
        self.interval = interval
        self._buffer: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._targets: tuple[tuple[int, ...], tuple[str, ...]] = ((), ())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "testfleet.telemetry.sampler_process", "--interval", repr(interval),
             "--worker-pid", str(worker_pid or os.getpid()), "--metrics-interval", repr(metrics_interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,),
                                        name="testfleet-sampler-reader", daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                t, values = json.loads(line)
            except (ValueError, TypeError):
                continue
            with self._lock:
                self._buffer.append(Sample(float(t), values))

    def watch(self, pids: list[int], urls: list[str]) -> None:
        """Tell the child which SUT processes and metrics endpoints to read (sent on change)."""
        targets = (tuple(sorted(pids)), tuple(sorted(urls)))
        if targets == self._targets or self._proc.stdin is None:
            return
        self._targets = targets
        try:
            self._proc.stdin.write(json.dumps({"sut": list(targets[0]), "metrics": list(targets[1])}) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def window(self, t0: float, t1: float) -> list[Sample]:
        out: list[Sample] = []
        with self._lock:
            for sample in reversed(self._buffer):
                if sample.t < t0:
                    break
                if sample.t <= t1:
                    out.append(sample)
        out.reverse()
        return out

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._buffer)

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    @property
    def overhead(self) -> float:
        """The child's CPU time as a fraction of its life (1.0 = one core)."""
        try:
            proc = psutil.Process(self._proc.pid)
            times = proc.cpu_times()
            alive = time.time() - proc.create_time()
        except psutil.Error:
            return 0.0
        return (times.user + times.system) / alive if alive > 0 else 0.0

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout)


# -- the child ---------------------------------------------------------------------------------
def _child(interval: float, worker_pid: int, metrics_interval: float) -> int:
    worker = ProcessProbe(worker_pid, "worker", tree=False)
    system = SystemProbe()
    sut: dict[int, ProcessProbe] = {}
    scrapers: dict[str, Any] = {}
    next_scrape = 0.0
    stdin = sys.stdin.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    pending = b""
    out = sys.stdout
    next_tick = time.monotonic()
    while True:
        timeout = max(0.0, next_tick - time.monotonic())
        lines: list[bytes] = []
        if selector.select(timeout):
            chunk = os.read(stdin, 65536)
            if not chunk:
                return 0  # the parent closed our stdin: done
            *lines, pending = (pending + chunk).split(b"\n")
        for line in lines[-1:]:  # only the latest wish counts
            try:
                wanted = json.loads(line)
            except ValueError:
                continue
            pids = {int(p) for p in wanted.get("sut", [])}
            sut = {pid: sut.get(pid) or ProcessProbe(pid, "sut", rescan=_RESCAN) for pid in pids}
            urls = set(wanted.get("metrics", []))
            for url in list(scrapers):
                if url not in urls:
                    scrapers.pop(url).close()
            for url in urls - scrapers.keys():
                from testfleet.telemetry.prometheus import (
                    PrometheusProbe,  # httpx: only when asked
                )

                scrapers[url] = PrometheusProbe(url, timeout=max(0.2, min(2.0, metrics_interval)))
        now = time.monotonic()
        if now < next_tick:
            continue
        if not psutil.pid_exists(worker_pid):
            return 0
        values: dict[str, float] = {}
        values.update(worker())
        values.update(system())
        for probe in sut.values():
            for name, value in probe().items():
                values[name] = values.get(name, 0.0) + value
        if scrapers and now >= next_scrape:
            next_scrape = now + metrics_interval
            for probe in scrapers.values():
                values.update(probe())
        clean = {k: v for k, v in values.items() if math.isfinite(v)}
        try:
            out.write(json.dumps([time.monotonic(), clean], separators=(",", ":")) + "\n")
            out.flush()
        except (BrokenPipeError, OSError):
            return 0
        next_tick += interval
        if next_tick < time.monotonic():  # fell behind: skip missed ticks rather than burst
            next_tick = time.monotonic() + interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet's telemetry sampler (a worker's child)")
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--worker-pid", type=int, required=True)
    parser.add_argument("--metrics-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        return _child(args.interval, args.worker_pid, args.metrics_interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
