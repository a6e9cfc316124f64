"""The telemetry sampler as a child process, so sampling never competes for the worker's GIL.

A sampler *thread* inside a busy worker costs far more than its own CPU time: psutil reads
``/proc`` files in Python and releases the GIL around each read, so every read forces the test
thread to hand the GIL over and take it back (measured: +20 % wall time for an async HTTP load
at 10 samples/s, with the thread itself using 6 % of a core). In a process of its own the same
probes cost only their CPU time.

Protocol (JSON lines): the parent writes ``{"sut": [pid, ...], "metrics": [url, ...]}`` to the
child's stdin whenever the SUT instances change, and ``{"mark": n, "reply": bool}`` at a test's
edges (the child samples at once, so a rate such as CPU % starts or ends with the test; with
``reply`` the sample comes back tagged ``n`` and the parent waits for it); the child writes
``[t, {metric: value}]`` to its stdout each interval, ``t`` being ``time.monotonic()``
(CLOCK_MONOTONIC: one clock for every process on the machine, so samples line up with the
parent's test windows). The child exits when its stdin closes or its parent is gone.
:class:`SamplerProcess` is the parent's side and offers the reading surface the sampler
thread it replaced had (``window``, ``samples``,
``sample_once`` is not offered: a child's sample cannot be forced synchronously).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from collections import deque
from typing import IO, Any

import psutil

from testfleet.execution.parent_death import _libc, die_with_parent
from testfleet.plugins.telemetry import plugin_probes, read_plugin_probes
from testfleet.telemetry.sampler import ProcessProbe, Sample, window_of

__all__ = ["SamplerProcess"]

_RESCAN = 2.0  # seconds between listings of the SUT's descendants (a scan reads every pid's stat)
_MAX_HELD = 32 << 20  # bytes of samples the child holds while its parent does not read (~100k)


class SamplerProcess:
    """Starts the child and reads its samples on the caller's thread, between tests.

    There is no reader thread: a thread woken by each sample line had to take the GIL from the
    test thread (~0.2 ms per line, more under load, and it slowed every result the worker sent).
    The child's pipe is non-blocking here and drained whenever samples are asked for
    (:meth:`window`, :meth:`samples`, :attr:`newest`...); while a long test runs nobody drains
    it, so the child keeps what the pipe cannot take and sends it later (:func:`_child`).
    """

    def __init__(self, interval: float, *, worker_pid: int | None = None,
                 metrics_interval: float = 1.0, capacity: int = 100_000) -> None:
        self.interval = interval
        self._buffer: deque[Sample] = deque(maxlen=capacity)
        self._marked: dict[int, Sample] = {}
        self._next_mark = 0
        self._targets: tuple[tuple[int, ...], tuple[str, ...]] = ((), ())
        self._newest = -math.inf
        self._pending = b""
        self._proc = _ForkedChild(interval, worker_pid or os.getpid(), metrics_interval)
        self._fd: int | None = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)

    @property
    def newest(self) -> float:
        """The time of the newest sample the child has sent (``-inf`` before the first)."""
        self._drain()
        return self._newest

    def _drain(self, wait: float = 0.0) -> None:
        """Read every complete line the child has written; with ``wait``, first wait (at most
        that long) for something to read."""
        if self._fd is None:
            return
        if wait > 0:
            try:
                ready, _, _ = select.select([self._fd], [], [], wait)
            except (OSError, ValueError):
                ready = []
            if not ready:
                return
        chunks = []
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:  # the child is gone: keep what was read
                self._fd = None
                break
            chunks.append(chunk)
            if len(chunk) < 1 << 16:
                break
        if not chunks:
            return
        *lines, self._pending = (self._pending + b"".join(chunks)).split(b"\n")
        for line in lines:
            try:
                t, values, *mark = json.loads(line)
            except (ValueError, TypeError):
                continue
            sample = Sample(float(t), values)
            self._buffer.append(sample)
            self._newest = sample.t
            if mark:
                self._marked[int(mark[0])] = sample
        if len(self._marked) > 64:  # start marks nobody asked about: keep the last
            for old in sorted(self._marked)[:-64]:
                del self._marked[old]

    def mark(self, *, reply: bool = False, timeout: float = 0.25) -> Sample | int | None:
        """Ask for a sample now (a test starts or ends). With ``reply``, wait for it (at most
        ``timeout``) and return it: the sample that closes the test's window; without, return
        the mark's number (:meth:`marked` gives its sample once it is in, if it was taken)."""
        if self._proc.stdin is None:
            return None
        self._next_mark += 1
        number = self._next_mark
        try:
            self._proc.stdin.write(json.dumps({"mark": number, "reply": reply}) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            return None
        if not reply:
            return number
        deadline = time.monotonic() + timeout
        self._drain()
        while number not in self._marked:
            left = deadline - time.monotonic()
            if left <= 0 or self._fd is None:
                return None
            self._drain(wait=left)
        return self._marked.pop(number)

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
        self._drain()
        return window_of(self._buffer, t0, t1)

    def samples(self) -> list[Sample]:
        self._drain()
        return list(self._buffer)

    def marked(self, number: int) -> Sample | None:
        self._drain()
        return self._marked.get(number)

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
        # the child sends what it still holds, then leaves: read it meanwhile (a full pipe
        # would otherwise keep it from leaving)
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            self._drain(wait=0.02)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._drain()
        self._fd = None
        self._proc.stdout.close()


class _ForkedChild:
    """The sampler child, forked from this process rather than started as a new interpreter.

    A fresh ``python -m`` costs ~0.1 s of CPU (interpreter, site, psutil) per worker: with 100
    workers on 2 CPUs that alone was seconds of start-up. A fork has every module loaded already.
    The child keeps only its two pipes (stdin: wishes and marks; stdout: samples), dies with
    its parent (parent-death signal, and its parent's pid watched), and leaves by ``os._exit``
    so nothing of the parent (atexit, pytest's session, buffered files) runs or flushes twice.
    Offers the part of ``subprocess.Popen`` used here: ``pid``, ``stdin``, ``stdout``, ``poll``,
    ``wait``, ``kill``.
    """

    def __init__(self, interval: float, worker_pid: int, metrics_interval: float) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        parent = os.getpid()
        _libc_ready()
        plugins = plugin_probes()  # built here: the child loads nothing after the fork
        with warnings.catch_warnings():  # 3.12+ warns on fork with threads; the child uses no lock
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's path ends in os._exit
            code = 1
            try:
                die_with_parent(parent)
                faulthandler.disable()
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                    signal.signal(signum, signal.SIG_DFL)
                os.dup2(to_child_r, 0)
                os.dup2(from_child_w, 1)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.closerange(3, _max_fd())  # the coordinator's socket, the SUT watchdog's pipe...
                code = _child(interval, worker_pid, metrics_interval, 0, 1, plugins)
            except BaseException:  # noqa: BLE001 - whatever happens, the child must not return
                code = 1
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(from_child_w)
        self.pid = pid
        self.returncode: int | None = None
        self.stdin: IO[str] | None = os.fdopen(to_child_w, "w", buffering=1)
        self.stdout: IO[bytes] = os.fdopen(from_child_r, "rb", buffering=0)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (a suite's waitpid(-1))
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("sampler", timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _libc_ready() -> None:
    _libc()  # resolved before the fork, so the child loads nothing


# -- the child ---------------------------------------------------------------------------------
def _child(interval: float, worker_pid: int, metrics_interval: float, stdin: int = 0, stdout: int = 1,
           plugins: dict[str, Any] | None = None) -> int:
    worker = ProcessProbe(worker_pid, "worker", tree=False)
    if plugins is None:  # run on its own (main): the registered sources, `system` among them
        plugins = plugin_probes()
    sut: dict[int, ProcessProbe] = {}
    scrapers: dict[str, Any] = {}
    next_scrape = 0.0
    # what the parent's pipe could not take yet: the parent reads between tests, so during a long
    # test the pipe (64 KiB, a few minutes of samples) fills; sampling goes on meanwhile
    outgoing = bytearray()
    os.set_blocking(stdout, False)
    pending = b""
    next_tick = time.monotonic()
    last_sample = -math.inf

    def sample(mark: int | None) -> bool:  # a mark's number tags its sample
        nonlocal next_scrape, last_sample
        now = time.monotonic()
        values: dict[str, float] = {}
        values.update(worker())
        for probe in sut.values():
            for name, value in probe().items():
                values[name] = values.get(name, 0.0) + value
        if plugins:
            read_plugin_probes(plugins, values)
        if scrapers and now >= next_scrape and mark is None:
            next_scrape = now + metrics_interval
            for probe in scrapers.values():
                values.update(probe())
        clean = {k: v for k, v in values.items() if math.isfinite(v)}
        last_sample = time.monotonic()
        line = [last_sample, clean] if mark is None else [last_sample, clean, mark]
        outgoing.extend((json.dumps(line, separators=(",", ":")) + "\n").encode())
        if len(outgoing) > _MAX_HELD:  # a parent that never reads: drop the oldest lines
            cut = outgoing.find(b"\n", len(outgoing) - _MAX_HELD)
            del outgoing[:cut + 1]
        return send()

    def send() -> bool:  # False: the parent is gone (EPIPE)
        try:
            while outgoing:
                del outgoing[:os.write(stdout, outgoing)]
        except BlockingIOError:
            pass  # the pipe is full: the rest goes when the parent has read
        except OSError:
            return False
        return True

    while True:
        timeout = max(0.0, next_tick - time.monotonic())
        lines: list[bytes] = []
        readable, writable, _ = select.select([stdin], [stdout] if outgoing else [], [], timeout)
        if writable and not send():
            return 0
        if readable:
            chunk = os.read(stdin, 65536)
            if not chunk:  # the parent closed our stdin: done, once it has every sample
                os.set_blocking(stdout, True)
                send()
                return 0
            *lines, pending = (pending + chunk).split(b"\n")
        wishes: list[dict[str, Any]] = []
        marks: list[dict[str, Any]] = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            (marks if "mark" in message else wishes).append(message)
        for wanted in wishes[-1:]:  # only the latest wish counts
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
        for message in marks:
            # a test's edge: read now, so rates (CPU %) start or end with the test; a start mark
            # is skipped when a sample is fresh anyway (fast suites must not make us spin)
            due = message.get("reply") or time.monotonic() - last_sample >= interval / 4
            if due and not sample(int(message["mark"])):
                return 0
        now = time.monotonic()
        if now >= next_tick and now - last_sample < interval / 4:
            # a mark was just read: a tick now would measure CPU % over a millisecond or two,
            # which the clock's resolution turns into noise (hundreds of %); wait a little
            next_tick = last_sample + interval / 4
        now = time.monotonic()
        if now < next_tick:
            continue
        if not psutil.pid_exists(worker_pid):
            return 0
        if not sample(None):
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
