"""Running HTTP scenarios on asyncio: one execution on an ``httpx.AsyncClient``, or a batch.

:func:`run_scenario_async` is :func:`testfleet.adapters.scenario_run.run_scenario` on an
``httpx.AsyncClient``: both drive the same I/O-free execution
(:func:`~testfleet.adapters.scenario_run.execute`), so they check, extract and word their
messages alike.

:func:`run_batch` runs ``repeat`` executions of a scenario with at most ``concurrency`` in
flight: that many worker coroutines pull execution numbers from a shared counter (never
``repeat`` tasks at once), each on its own ``httpx.AsyncClient`` with one keep-alive
connection, so at most ``concurrency`` connections are open (why not one shared client: see
``_ONE_CONNECTION``). A failing execution, a refused connection included, is counted and kept (the
first few), never raised; the batch goes on. It runs its own event loop (``asyncio.run``), so
call it from synchronous code in any thread; called from a thread whose event loop is running,
it runs on a helper thread instead. uvloop is used when it is installed (it is not a
dependency).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np

from testfleet.adapters.scenario_aiohttp import open_session, run_execution
from testfleet.adapters.scenario_run import Call, ScenarioResult, drive_async

if TYPE_CHECKING:
    from testfleet.adapters.http_scenarios import Scenario

__all__ = ["KEEP_FAILURES", "BatchResult", "run_batch", "run_scenario_async"]

KEEP_FAILURES = 5  # failing executions a BatchResult keeps whole
# Each worker coroutine has its own client holding one keep-alive connection. One client
# shared by all, with a pool of `concurrency` connections, collapses at a few hundred
# connections: httpcore's pool rescans every connection (is_idle, has_expired, a socket
# poll each) on every request queued or released, O(connections) per event
# (encode/httpcore#1035): 100 connections gave 170 requests/s where 10 gave 1,700.
_ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
_T = TypeVar("_T")


async def run_scenario_async(scenario: Scenario, base_url: str,
                             params: dict[str, Any] | None = None, *, client: httpx.AsyncClient,
                             timeout: float = 10.0,
                             on_latency: Callable[[float], None] | None = None) -> ScenarioResult:
    """Run every step against ``base_url`` on ``client`` (left open); ``params`` overlay the
    space's baseline. ``on_latency(ms)`` is called after each request, answered or not."""
    async def send(call: Call) -> httpx.Response | Exception:
        try:
            return await client.request(call.method, call.url, **call.kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return exc

    return await drive_async(scenario, base_url, params, timeout, send, on_latency)


@dataclass
class BatchResult:
    """What one batch did: counts, the first few failures, every request's latency."""

    scenario: str
    executions: int  # executions run to the end (passed + failed)
    passed: int
    failed: int
    failures: list[ScenarioResult]  # the first KEEP_FAILURES failing executions, in finish order
    latencies_ms: np.ndarray  # every request's latency in ms, in finish order
    wall_s: float
    concurrency: int
    peak_in_flight: int  # most executions in flight at one moment
    params: dict[str, Any] = field(default_factory=dict)  # what every execution was given

    @property
    def requests(self) -> int:
        return int(self.latencies_ms.size)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def executions_per_s(self) -> float:
        return self.executions / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        """At least one execution ran and none failed."""
        return self.executions > 0 and self.failed == 0

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the request latencies; None without requests."""
        return float(np.percentile(self.latencies_ms, q)) if self.requests else None

    @property
    def message(self) -> str:
        """The first failure (with how many failed), or a one-line summary."""
        if self.failed:
            return (f"{self.failed} of {self.executions} executions failed; first: "
                    f"{self.failures[0].message}")
        if not self.executions:
            return "no execution ran"
        p50, p95 = self.percentile_ms(50), self.percentile_ms(95)
        return (f"{self.executions} executions passed: {self.requests} requests in "
                f"{self.wall_s:.2f} s ({self.requests_per_s:,.0f}/s), concurrency "
                f"{self.concurrency} (peak {self.peak_in_flight}), latency p50 {p50:.1f} ms, "
                f"p95 {p95:.1f} ms")


def run_batch(scenario: Scenario, base_url: str, params: dict[str, Any] | None = None, *,
              repeat: int | None = None, concurrency: int | None = None, timeout: float = 10.0,
              duration: float | None = None,
              on_latency: Callable[[float], None] | None = None,
              engine: str = "auto") -> BatchResult:
    """Run ``repeat`` executions (default: the scenario's ``repeat``) with at most
    ``concurrency`` (default: the scenario's) in flight, each with the same ``params``.

    ``duration`` (seconds) stops starting new executions once that long has passed; the ones
    in flight finish. Given ``duration`` and no ``repeat``, only the time bounds the batch.
    ``on_latency(ms)`` is called once per request, on the batch's event loop thread.
    ``engine``: ``httpx``, ``aiohttp`` (about 4x the requests per second of httpx, see
    :mod:`testfleet.adapters.scenario_aiohttp`) or ``auto`` (aiohttp when installed).
    """
    from testfleet.adapters import scenario_aiohttp

    if engine not in ("auto", "httpx", "aiohttp"):
        _bad("engine", engine, "auto, httpx or aiohttp")
    if engine == "aiohttp" and not scenario_aiohttp.available():
        _bad("engine", engine, "httpx, or aiohttp installed (pip install aiohttp)")
    use_aiohttp = engine == "aiohttp" or (engine == "auto" and scenario_aiohttp.available())
    if repeat is None:
        repeat = None if duration is not None else scenario.repeat
    if concurrency is None:
        concurrency = scenario.concurrency
    _positive_int("repeat", repeat, allow_none=True)
    _positive_int("concurrency", concurrency)
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                 or not duration > 0):
        _bad("duration", duration, "a positive number of seconds")
    batch = _Batch(scenario, base_url, params, repeat, concurrency, timeout, duration, on_latency)
    batch.use_aiohttp = use_aiohttp
    return _run_coroutine(batch.run)


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if type(value) is not int or value < 1:
        _bad(name, value, "an integer >= 1")


def _bad(name: str, value: Any, expected: str) -> None:
    from testfleet.adapters.http_scenarios import ScenarioError

    raise ScenarioError(f"{name} must be {expected}, not {value!r}", place=f"run_batch({name}=)",
                        expected=expected)


class _Batch:
    def __init__(self, scenario: Scenario, base_url: str, params: dict[str, Any] | None,
                 repeat: int | None, concurrency: int, timeout: float, duration: float | None,
                 on_latency: Callable[[float], None] | None) -> None:
        self.scenario, self.base_url, self.params = scenario, base_url, params
        self.repeat, self.concurrency, self.timeout = repeat, concurrency, timeout
        self.duration, self.user_on_latency = duration, on_latency
        self.started = self.in_flight = self.peak = self.passed = self.failed = 0
        self.failures: list[ScenarioResult] = []
        self.latencies: list[float] = []
        self.deadline = float("inf")
        self.result_params = {**scenario.baseline(), **(params or {})}
        self.use_aiohttp = False
        self.session: Any = None

    def on_latency(self, ms: float) -> None:
        self.latencies.append(ms)
        if self.user_on_latency is not None:
            self.user_on_latency(ms)

    def _may_start(self) -> bool:
        if self.repeat is not None and self.started >= self.repeat:
            return False
        return time.perf_counter() < self.deadline

    async def _worker(self, verify: ssl.SSLContext | None) -> None:
        if self.session is not None:  # aiohttp: one session and pool for the whole batch
            await self._loop(lambda: run_execution(self.session, self.scenario, self.base_url,
                                                   self.params, self.timeout, self.on_latency))
            return
        assert verify is not None  # run() makes one context whenever the engine is httpx
        async with httpx.AsyncClient(limits=_ONE_CONNECTION, timeout=self.timeout,
                                     verify=verify) as client:
            await self._loop(lambda: run_scenario_async(
                self.scenario, self.base_url, self.params, client=client, timeout=self.timeout,
                on_latency=self.on_latency))

    async def _loop(self, one: Callable[[], Coroutine[Any, Any, ScenarioResult]]) -> None:
        while self._may_start():
            self.started += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                result = await one()
            finally:
                self.in_flight -= 1
            if result.ok:
                self.passed += 1
            else:
                self.failed += 1
                if len(self.failures) < KEEP_FAILURES:
                    self.failures.append(result)

    async def run(self) -> BatchResult:
        workers = self.concurrency if self.repeat is None else min(self.concurrency, self.repeat)
        verify = None if self.use_aiohttp else httpx.create_ssl_context()  # one, shared
        if self.use_aiohttp:
            self.session = open_session(self.concurrency)
        start = time.perf_counter()
        if self.duration is not None:
            self.deadline = start + self.duration
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(verify))
        except BaseExceptionGroup as group_error:  # a bad template, a raising on_latency
            raise group_error.exceptions[0] from None
        finally:
            if self.session is not None:
                await self.session.close()
        wall = time.perf_counter() - start
        return BatchResult(self.scenario.name, self.passed + self.failed, self.passed,
                           self.failed, self.failures, np.asarray(self.latencies, dtype=float),
                           wall, self.concurrency, self.peak, self.result_params)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a fresh coroutine to completion on a new event loop (uvloop's when installed); on a
    helper thread when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _new_loop_run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = _new_loop_run(factory())
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc

    helper = threading.Thread(target=target, name="testfleet-batch")
    helper.start()
    helper.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _new_loop_run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
