"""The message protocol between the coordinator and the worker processes.

Every message is one of the frozen dataclasses below, sent with ``multiprocessing.connection``
(pickled, length-prefixed) over a Unix socket (a named pipe on Windows), or, on the Ray backend,
pickled with :func:`encode` inside the actor and read back with :func:`decode`. The protocol is
deliberately tiny, in the spirit of pytest-xdist's:

collector -> coordinator
    :class:`Collected`      the suite as collected: items, deselected count, errors
    :class:`Exited`         (fork zygote only) a forked worker ended; code < 0 is -signal
coordinator -> collector (fork zygote only)
    :class:`Fork`           fork one more worker from the collected session
    :class:`Stop`           no more workers needed: finish the session and exit
worker -> coordinator
    :class:`Hello`          connected; waits for its :class:`Configure` before anything else
    :class:`Started`        began running item ``index`` (only when a timeout is set)
    :class:`Ran`            item ``index`` ran: its :class:`TestResult`, with the mutation
                            engine's ``proposals`` for an explorable item
    :class:`LateTeardown`   fixtures of item ``index`` torn down late (stopped early) failed
    :class:`Telemetry`      telemetry samples not yet shipped with a result (before Bye)
    :class:`Fatal`          the session must stop (the SUT never started): exit ``code``
    :class:`Bye`            leaving after Shutdown/Stop, or because its own pytest session asked
                            to stop (reason: pytest's shouldfail/shouldstop text)
coordinator -> worker
    :class:`Configure`      the reply to Hello: the one :class:`WorkerConfig` of the worker
    :class:`Run`            queue these items (indices into the collected list, then the explored
                            variants'); ``explored`` maps an index to its :class:`Explored`
    :class:`Ruleset`        a ruleset version changed during the run (the first ones come in
                            the WorkerConfig)
    :class:`Flush`          no more work for now: run the last queued item too
    :class:`Stop`           drop the queue, tear fixtures down and exit (``-x``)
    :class:`Shutdown`       run what is queued, then exit

The coordinator reads with :func:`receive` / :func:`decode`: a message that names a class it
cannot import (a value whose class is defined in a test module) raises
:class:`UnreadableMessage`, which names the class, rather than a bare ``ModuleNotFoundError``
from deep inside the backend. How a worker process finds the coordinator (address, authkey,
parent pid) is the only thing left in its environment: it is needed before any message can flow.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, NotRequired, TypedDict

__all__ = [
    "Bye",
    "Collected",
    "CollectedItem",
    "Collection",
    "Configure",
    "Exited",
    "Explored",
    "Fatal",
    "Flush",
    "Fork",
    "Hello",
    "LateTeardown",
    "Ran",
    "Ruleset",
    "Run",
    "Series",
    "Shutdown",
    "Started",
    "Stop",
    "Telemetry",
    "TestResult",
    "UnreadableMessage",
    "WorkerConfig",
    "decode",
    "describe_unreadable",
    "encode",
    "holds_stand_in",
    "receive",
]

ENV_ADDRESS = "TESTFLEET_COORDINATOR"
ENV_AUTHKEY = "TESTFLEET_AUTHKEY"
ENV_WORKER_ID = "TESTFLEET_WORKER"  # set by the worker for the tests it runs (as PYTEST_XDIST_WORKER)


# -- reading messages ---------------------------------------------------------------------------
class UnreadableMessage(Exception):
    """A worker's message refers to classes the coordinator cannot import.

    ``message`` is the message as read, each such object replaced by a stand-in whose repr names
    its class, so the coordinator can say which test carried it.
    """

    def __init__(self, message: Any, missing: list[str], reason: str) -> None:
        self.message = message
        self.missing = missing
        self.reason = reason
        super().__init__(f"cannot import {', '.join(missing)} ({reason})")


class _StandIn:
    """What an object of a class that cannot be imported here becomes."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{self.qualname}, not importable by the coordinator>"


class _TolerantUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.missing: list[str] = []
        self.reason = ""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as exc:
            qualname = f"{module}.{name}"
            if qualname not in self.missing:
                self.missing.append(qualname)
            self.reason = self.reason or f"{type(exc).__name__}: {exc}"
            return type(name, (_StandIn,), {"qualname": qualname})


def encode(message: Any) -> bytes:
    """A message as bytes, as ``Connection.send`` pickles it (for channels that carry bytes)."""
    return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def receive(conn: Any) -> Any:
    """One message from ``conn`` (a ``multiprocessing`` connection), read as ``conn.recv()``
    does, except that a class that cannot be imported raises :class:`UnreadableMessage`."""
    return decode(conn.recv_bytes())


def decode(data: bytes) -> Any:
    """A message from its bytes; a class that cannot be imported raises :class:`UnreadableMessage`."""
    try:
        return pickle.loads(data)  # the usual case, at C speed
    except (ImportError, AttributeError):
        pass
    unpickler = _TolerantUnpickler(data)
    message = unpickler.load()
    if unpickler.missing:
        raise UnreadableMessage(message, unpickler.missing, unpickler.reason)
    return message


def holds_stand_in(value: Any) -> bool:
    """Whether ``value`` (a message, or plain data: dicts, lists, tuples) holds a stand-in for a missing class."""
    if isinstance(value, _StandIn):
        return True
    if is_dataclass(value) and not isinstance(value, type):  # a message, a result
        return any(holds_stand_in(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, dict):
        return any(holds_stand_in(k) or holds_stand_in(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_stand_in(v) for v in value)
    return False


def describe_unreadable(exc: UnreadableMessage, nodeids: Sequence[str]) -> str:
    """Which test's data the coordinator could not read, and why (``nodeids``: the run's items)."""
    msg = exc.message
    tests: list[str] = []
    if isinstance(msg, Collected):
        tests = [str(item.get("nodeid")) for item in msg.collection.get("items", ()) if holds_stand_in(item)]
    elif isinstance(msg, (Ran, LateTeardown, Started)) and msg.index < len(nodeids):
        tests = [str(nodeids[msg.index])]
    where = f" for {', '.join(tests[:3])}" + (f" and {len(tests) - 3} more" if len(tests) > 3 else "") \
        if tests else ""
    return (f"internal error: a worker sent data{where} that the coordinator cannot read: it refers to "
            f"{', '.join(exc.missing)}, which cannot be imported outside the test session ({exc.reason})")


# -- plain data carried inside messages ----------------------------------------------------------
class CollectedItem(TypedDict):
    """One collected test, as the coordinator plans with it."""

    nodeid: str
    file: str
    line: int | None
    name: str
    markers: list[str]
    keywords: list[str]
    requires: dict[str, Any]
    params: dict[str, Any]
    space: dict[str, Any] | None  # the test's own ``@testfleet.explore`` space (declaration)
    uses_instance: bool  # it runs against the SUT instance: ``sut.*`` dimensions join its space
    explored: NotRequired[bool]  # an explored variant the coordinator added (never from a worker)


class Collection(TypedDict):
    items: list[CollectedItem]
    deselected: int
    errors: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    rootdir: str
    pid: int
    terminal: dict[str, Any]


class Series(TypedDict):
    """Telemetry samples as columns: ``t`` (epoch seconds), ``metric``, ``value``."""

    t: list[float]
    metric: list[str]
    value: list[float]


@dataclass(frozen=True)
class TestResult:
    """Everything the coordinator needs about one item's run (a worker's, or a lost test's)."""

    __test__ = False  # not a pytest test class

    outcome: str
    categories: list[str] = field(default_factory=list)
    duration: float = 0.0
    start: float | None = None
    stop: float | None = None
    when: str | None = None
    message: str = ""
    longrepr: str = ""
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    fingerprint: str | None = None
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    telemetry: dict[str, dict[str, float]] = field(default_factory=dict)
    series: Series | None = None  # samples taken since the last result, when there are any
    proposals: tuple[Any, ...] | list[Any] = ()  # the mutation engine's, for an explorable item
    instance: dict[str, Any] | None = None  # the SUT instance's name and config it ran against
    sut_pid: int | None = None  # the worker's SUT process then (helpers on anomaly attach to it)
    #: requests the chaos proxy failed on purpose while it ran, per toxic (--chaos only)
    injected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Explored:
    """What an explorable execution is: the collected item it runs, its params (None: the
    item's own) and the ExploreTask its worker's mutation engine gets (None: not explorable)."""

    base: int
    params: dict[str, Any] | None = None
    task: Any = None


@dataclass(frozen=True)
class WorkerConfig:
    """All a worker is told about the run, once, in reply to its Hello."""

    worker_count: int = 1
    seed: int = 0  # SUT instances draw their configs from it
    telemetry_interval: float = 0.1  # seconds between samples; 0 switches telemetry off
    metrics_interval: float = 1.0  # seconds between scrapes of the SUT's metrics endpoint
    sut: Any = None  # the [tool.testfleet.sut] table (a SutSpec, its cwd resolved), or None
    sut_space: dict[str, Any] | None = None  # its config_space as explored (``sut.*``), declared
    rulesets: tuple[tuple[str, dict[str, Any]], ...] = ()  # (key, document) for the mutation engine


# -- collector <-> coordinator -------------------------------------------------------------------
@dataclass(frozen=True)
class Collected:
    collection: Collection


@dataclass(frozen=True)
class Exited:
    worker_id: str
    pid: int | None
    code: int  # as os.waitstatus_to_exitcode gives it


@dataclass(frozen=True)
class Fork:
    worker_id: str


# -- worker -> coordinator -----------------------------------------------------------------------
@dataclass(frozen=True)
class Hello:
    worker_id: str
    pid: int


@dataclass(frozen=True)
class Started:
    index: int
    wall_time: float


@dataclass(frozen=True)
class Ran:
    index: int
    result: TestResult


@dataclass(frozen=True)
class LateTeardown:
    index: int
    result: TestResult


@dataclass(frozen=True)
class Telemetry:
    series: Series


@dataclass(frozen=True)
class Fatal:
    worker_id: str
    message: str
    code: int | None  # pytest.exit's returncode


@dataclass(frozen=True)
class Bye:
    worker_id: str
    reason: str | None = None


# -- coordinator -> worker -----------------------------------------------------------------------
@dataclass(frozen=True)
class Configure:
    config: WorkerConfig


@dataclass(frozen=True)
class Run:
    indices: list[int]
    report_start: bool = False
    explored: dict[int, Explored] = field(default_factory=dict)


@dataclass(frozen=True)
class Ruleset:
    key: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


#: what a worker (or the collector) sends
WorkerMessage = Collected | Exited | Hello | Started | Ran | LateTeardown | Telemetry | Fatal | Bye
#: what the coordinator sends
CoordinatorMessage = Configure | Run | Ruleset | Flush | Stop | Shutdown | Fork
