"""The message protocol between the coordinator and the worker processes.

Every message is a tuple whose first element is one of the tags below, sent with
``multiprocessing.connection`` (pickled, length-prefixed) over a Unix socket (a named pipe on
Windows). The protocol is deliberately tiny, in the spirit of pytest-xdist's:

collector -> coordinator
    (COLLECTED, payload)            the suite as collected: items, deselected count, errors
    (EXITED, worker_id, pid, code)  (fork zygote only) a forked worker ended; code < 0 is -signal
coordinator -> collector (fork zygote only)
    (FORK, worker_id)               fork one more worker from the collected session
    (STOP,)                         no more workers needed: finish the session and exit
worker -> coordinator
    (HELLO, worker_id, pid)         connected and ready for work
    (STARTED, index, wall_time)     began running item ``index`` (only when a timeout is set)
    (RESULT, index, payload)        item ``index`` ran; payload is a dict (see pytest_worker), with
                                    the mutation engine's ``proposals`` for an explorable item
    (TEARDOWN, index, payload)      fixtures of item ``index`` torn down late (stopped early) failed
    (TELEMETRY, series)             telemetry samples not yet shipped with a result (before BYE)
    (FATAL, worker_id, message, code)  the session must stop (the SUT never started): exit ``code``
    (BYE, worker_id, reason)        leaving after SHUTDOWN/STOP, or because its own pytest session
                                    asked to stop (reason: pytest's shouldfail/shouldstop text)
coordinator -> worker
    (RUN, [index, ...], report_start, explored)
                                    queue these items (indices into the collected list, then the
                                    explored variants'); ``explored`` maps an index to (item index,
                                    its params or None, its ExploreTask or None)
    (RULESET, key, document)        a ruleset version for the worker's mutation engine (at HELLO,
                                    and again whenever the file changes during the run)
    (FLUSH,)                        no more work for now: run the last queued item too
    (STOP,)                         drop the queue, tear fixtures down and exit (``-x``)
    (SHUTDOWN,)                     run what is queued, then exit

The coordinator reads with :func:`receive`: a message that names a class it cannot import (a
value whose class is defined in a test module) raises :class:`UnreadableMessage`, which names
the class, rather than a bare ``ModuleNotFoundError`` from deep inside the backend.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

COLLECTED = "collected"
EXITED = "exited"
FORK = "fork"
STOP = "stop"
HELLO = "hello"
STARTED = "started"
RESULT = "result"
TEARDOWN = "teardown"
BYE = "bye"
TELEMETRY = "telemetry"
FATAL = "fatal"
RUN = "run"
RULESET = "ruleset"
FLUSH = "flush"
SHUTDOWN = "shutdown"

ENV_ADDRESS = "TESTFLEET_COORDINATOR"
ENV_AUTHKEY = "TESTFLEET_AUTHKEY"
ENV_WORKER_ID = "TESTFLEET_WORKER"


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


def receive(conn: Any) -> Any:
    """One message from ``conn`` (a ``multiprocessing`` connection), read as ``conn.recv()``
    does, except that a class that cannot be imported raises :class:`UnreadableMessage`."""
    data = conn.recv_bytes()
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
    """Whether ``value`` (plain data: dicts, lists, tuples) holds a stand-in for a missing class."""
    if isinstance(value, _StandIn):
        return True
    if isinstance(value, dict):
        return any(holds_stand_in(k) or holds_stand_in(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_stand_in(v) for v in value)
    return False
