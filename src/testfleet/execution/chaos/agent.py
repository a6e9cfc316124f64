"""The worker's side of ``--chaos``: the proxy in front of its SUT instance, and a small thread
that carries out what the coordinator's injector asks of this worker.

The coordinator and its workers share a chaos folder (``TESTFLEET_CHAOS_DIR``, set in the workers'
environment only when the run injects faults). The injector writes ``orders-<worker>.json`` (a
list of orders, appended to, replaced atomically); this thread reads it every ``POLL`` seconds
and applies each new order once: toxics go to this process's proxies, ``fill_memory`` allocates
(and touches) that many MiB for the order's duration. The worker writes ``worker-<worker>.json``
(its pid) and, for each SUT instance it starts, ``sut-<instance>.json`` (the SUT's pid, its own
port and the proxy's), so that the injector can stop or kill the right processes on any backend. :func:`injected` sums
what this process's proxies did to requests; the worker session reports the part that fell within
each test (``TestResult.injected``), so the coordinator can tell a failure the injection caused.
Nothing here runs, and nothing is imported, in a run without ``--chaos``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from testfleet.atomic import atomic_write_text

ENV_CHAOS_DIR = "TESTFLEET_CHAOS_DIR"
ENV_CHAOS_SEED = "TESTFLEET_CHAOS_SEED"
POLL = 0.1
MAX_FILL_MIB = 4096
#: never take more than this share of the memory still available, whatever the order says
FILL_SHARE_OF_AVAILABLE = 0.5

_PROXIES: dict[str, Any] = {}  # instance name -> ChaosProxy, kept across restarts of the SUT
_started = threading.Event()


def chaos_dir() -> Path | None:
    value = os.environ.get(ENV_CHAOS_DIR)
    return Path(value) if value else None


def front(instance: str, sut_port: int, sut_pid: int) -> int:
    """The port tests reach the instance on: a proxy in front of ``sut_port`` (the same proxy,
    and so the same port, after a restart of the SUT)."""
    from testfleet.execution.chaos.proxy import ChaosProxy

    folder = chaos_dir()
    proxy = _PROXIES.get(instance)
    if proxy is None:
        seed = os.environ.get(ENV_CHAOS_SEED, "0")
        proxy = _PROXIES[instance] = ChaosProxy(sut_port, seed=zlib.crc32(f"{seed}:{instance}".encode()))
    proxy.set_upstream(sut_port)
    if folder is not None:
        atomic_write_text(folder / f"sut-{instance}.json",
                          json.dumps({"pid": sut_pid, "port": sut_port, "proxy_port": proxy.port}))
    return int(proxy.port)


def injected() -> dict[str, int]:
    """Requests this process's proxies failed on purpose so far, per toxic (only those that hit)."""
    total: dict[str, int] = {}
    for proxy in list(_PROXIES.values()):
        for kind, n in proxy.injected().items():
            total[kind] = total.get(kind, 0) + n
    return total


def injected_since(before: dict[str, int]) -> dict[str, int]:
    """What :func:`injected` has added since ``before`` (only the toxics that hit since)."""
    now = injected()
    return {kind: n - before.get(kind, 0) for kind, n in now.items() if n > before.get(kind, 0)}


def start_agent(worker_id: str) -> None:
    """Start the order-reading thread of this worker (once per process)."""
    folder = chaos_dir()
    if folder is None or _started.is_set():
        return
    _started.set()
    atomic_write_text(folder / f"worker-{worker_id}.json", json.dumps({"pid": os.getpid()}))
    threading.Thread(target=_Agent(folder, worker_id).run, name="testfleet-chaos-agent", daemon=True).start()


class _Agent:
    def __init__(self, folder: Path, worker_id: str) -> None:
        self.path = folder / f"orders-{worker_id}.json"
        self.done = 0  # orders applied so far
        self.mtime: float | None = None
        self.held: list[tuple[float, bytearray]] = []  # (release at, memory)

    def run(self) -> None:
        while True:
            time.sleep(POLL)
            now = time.monotonic()
            self.held = [(until, block) for until, block in self.held if until > now]
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                continue
            if mtime == self.mtime:
                continue
            self.mtime = mtime
            try:
                orders = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.mtime = None  # read again next time
                continue
            for order in orders[self.done:]:
                self.apply(order)
            self.done = max(self.done, len(orders))

    def apply(self, order: dict[str, Any]) -> None:
        fault, duration, params = order["fault"], float(order.get("duration", 0)), order.get("params", {})
        if fault == "fill_memory":
            self.held.append((time.monotonic() + duration, _fill(float(params.get("mib", 64)))))
            return
        for proxy in list(_PROXIES.values()):
            proxy.add_toxic(fault, duration, params)


def _fill(mib: float) -> bytearray:
    """``mib`` MiB (bounded), every page written so that it is resident, not only reserved."""
    import psutil

    limit = psutil.virtual_memory().available * FILL_SHARE_OF_AVAILABLE / 2**20
    size = int(min(mib, MAX_FILL_MIB, limit) * 2**20)
    block = bytearray(size)
    block[::4096] = b"\x01" * len(range(0, size, 4096))
    return block
