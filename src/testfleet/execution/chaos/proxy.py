"""A TCP proxy on 127.0.0.1 in front of a SUT instance, with toxics on its network path.

Why not Toxiproxy: it is a Go server binary, and neither PyPI, npm nor Debian ship it (only
clients for it: ``toxiproxy-python``, ``toxiproxy-node-client``, which need the server running).
The Python TCP proxies on PyPI are unmaintained or are full HTTP proxies. A proxy with toxics is
small on asyncio's streams, so it is written here; its toxics follow Toxiproxy's meaning:

* ``latency``: each chunk sent back to the client waits ``ms`` milliseconds (plus or minus a
  uniform ``jitter_ms``);
* ``bandwidth``: the bytes sent back to the client flow at ``kbps`` kilobytes per second at most;
* ``reset_peer``: a connection whose client sends data is reset (TCP RST), for a ``share`` of
  connections (default all);
* ``timeout``: the client's data is held, nothing is sent either way, and the connection is
  closed when the toxic ends;
* ``http_error``: a ``share`` of HTTP requests (a chunk from the client that starts with a
  request line) is answered ``status`` (503) at once, without reaching the SUT.

Every toxic lasts a given number of seconds. Each proxy counts what its toxics did to requests
(:meth:`ChaosProxy.injected`: per toxic of :data:`ERROR_TOXICS`, the connections reset, held or
answered with an injected status), counted before the client can see the effect, so a test that
reads the count after its request sees its own injection (:mod:`.blame` judges on it). All proxies
of a process share one event loop, on one daemon thread started with the first proxy; toxics may
be added from any thread. Random choices (jitter, shares) come from a generator seeded per proxy.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
_CHUNK = 65536
_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP/1\.[01]\r?\n")
TOXICS = ("latency", "bandwidth", "reset_peer", "timeout", "http_error")
#: the toxics that make a request fail (the others only slow it down): what the proxy counts
ERROR_TOXICS = ("http_error", "reset_peer", "timeout")


@dataclass
class Toxic:
    kind: str
    until: float  # time.monotonic() when it ends
    params: dict[str, float]


class _Loop:
    """The process's one proxy event loop, on a daemon thread."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _pid = 0  # a forked child inherits the loop but not its thread: it makes its own

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed() or cls._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="testfleet-chaos-proxy", daemon=True).start()
                cls._loop, cls._pid = loop, os.getpid()
            return cls._loop


class ChaosProxy:
    """Listens on ``port`` (0: a free one) and forwards to ``127.0.0.1:upstream``."""

    def __init__(self, upstream: int, *, port: int = 0, seed: int = 0) -> None:
        self.upstream = upstream
        self._rng = random.Random(seed)
        self._toxics: list[Toxic] = []
        self._lock = threading.Lock()
        self._loop = _Loop.get()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._injected = dict.fromkeys(ERROR_TOXICS, 0)  # written on the loop's thread only
        self.port = asyncio.run_coroutine_threadsafe(self._listen(port), self._loop).result(10)

    async def _listen(self, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, HOST, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    # -- control (any thread) --------------------------------------------------------------
    def set_upstream(self, port: int) -> None:
        self.upstream = port

    def add_toxic(self, kind: str, duration: float, params: dict[str, float] | None = None) -> None:
        if kind not in TOXICS:
            raise ValueError(f"unknown toxic {kind!r} (known: {', '.join(TOXICS)})")
        with self._lock:
            self._toxics.append(Toxic(kind, time.monotonic() + duration, dict(params or {})))

    def clear_toxics(self) -> None:
        with self._lock:
            self._toxics.clear()

    def active(self) -> dict[str, Toxic]:
        """The toxics in force now, one per kind (the latest added wins)."""
        now = time.monotonic()
        with self._lock:
            self._toxics = [t for t in self._toxics if t.until > now]
            return {t.kind: t for t in self._toxics}

    def injected(self) -> dict[str, int]:
        """Requests each error toxic has hit so far (a copy; only the toxics that hit any)."""
        return {kind: n for kind, n in dict(self._injected).items() if n}

    def close(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None

        async def _close() -> None:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
        except (TimeoutError, RuntimeError):
            pass

    # -- the connections (the loop's thread) ------------------------------------------------
    def _chance(self, toxic: Toxic) -> bool:
        return self._rng.random() < toxic.params.get("share", 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
        except OSError:  # the SUT is down: the client sees the connection refused, as it would
            _reset(writer)
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(self._upstream(reader, up_writer, writer),
                                 self._downstream(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                if not w.is_closing():
                    w.transport.abort()

    async def _upstream(self, reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter,
                        writer: asyncio.StreamWriter) -> None:
        """Client -> SUT, where the reset, timeout and error toxics act."""
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                if up_writer.can_write_eof() and not up_writer.is_closing():
                    up_writer.write_eof()
                return
            toxics = self.active()
            held = toxics.get("timeout")
            if held is not None:  # nothing goes through; the connection ends with the toxic
                self._injected["timeout"] += 1
                await asyncio.sleep(max(0.0, held.until - time.monotonic()))
                _reset(writer)
                up_writer.transport.abort()
                return
            reset = toxics.get("reset_peer")
            if reset is not None and self._chance(reset):
                self._injected["reset_peer"] += 1
                _reset(writer)
                up_writer.transport.abort()
                return
            error = toxics.get("http_error")
            if error is not None and _REQUEST_LINE.match(data) and self._chance(error):
                self._injected["http_error"] += 1  # before the answer leaves: the client reads it after
                writer.write(_error_response(int(error.params.get("status", 503))))
                await writer.drain()
                writer.close()
                up_writer.transport.abort()
                return
            up_writer.write(data)
            await up_writer.drain()

    async def _downstream(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """SUT -> client, where latency and bandwidth act."""
        while True:
            data = await up_reader.read(_CHUNK)
            if not data:
                if not writer.is_closing():
                    writer.close()
                return
            toxics = self.active()
            latency = toxics.get("latency")
            if latency is not None:
                jitter = latency.params.get("jitter_ms", 0.0)
                delay = latency.params.get("ms", 0.0) + self._rng.uniform(-jitter, jitter)
                await asyncio.sleep(max(0.0, delay) / 1000.0)
            slow = toxics.get("bandwidth")
            if slow is not None:
                rate = max(1.0, slow.params.get("kbps", 1.0)) * 1000.0  # bytes per second
                for start in range(0, len(data), 1024):
                    writer.write(data[start:start + 1024])
                    await writer.drain()
                    await asyncio.sleep(min(1024, len(data) - start) / rate)
                continue
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), so the peer sees ECONNRESET, not a clean end."""
    sock: Any = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def _error_response(status: int) -> bytes:
    body = b'{"error": "injected by testfleet --chaos"}'
    reason = {503: "Service Unavailable", 500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Error")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
