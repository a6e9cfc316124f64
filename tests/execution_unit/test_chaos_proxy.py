"""The chaos proxy against a real HTTP server on 127.0.0.1: it forwards, and each toxic does what
it says (delays are asserted as lower bounds, shares within a binomial bound at a fixed seed)."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from testfleet.execution.chaos.proxy import ChaosProxy

BIG = b"x" * 60_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = BIG if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def proxy(server: int) -> Iterator[ChaosProxy]:
    p = ChaosProxy(server, seed=7)
    yield p
    p.close()


def _url(proxy: ChaosProxy, path: str = "/") -> str:
    return f"http://127.0.0.1:{proxy.port}{path}"


def test_forwards_to_the_upstream_unchanged(proxy: ChaosProxy) -> None:
    with httpx.Client() as client:
        assert client.get(_url(proxy)).text == "ok"
        assert client.get(_url(proxy, "/big")).content == BIG


def test_latency_holds_each_response_at_least_that_long(proxy: ChaosProxy) -> None:
    proxy.add_toxic("latency", 30, {"ms": 150, "jitter_ms": 20})
    started = time.monotonic()
    assert httpx.get(_url(proxy)).text == "ok"
    assert time.monotonic() - started >= 0.13


def test_bandwidth_limits_the_rate(proxy: ChaosProxy) -> None:
    proxy.add_toxic("bandwidth", 30, {"kbps": 200})  # 60 kB at 200 kB/s: 0.3 s at least
    started = time.monotonic()
    assert httpx.get(_url(proxy, "/big")).content == BIG
    assert time.monotonic() - started >= 0.25


def test_reset_peer_resets_the_connection(proxy: ChaosProxy) -> None:
    proxy.add_toxic("reset_peer", 30)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            if not sock.recv(100):
                raise AssertionError("closed cleanly, not reset")
    with pytest.raises(httpx.TransportError):
        httpx.get(_url(proxy))


def test_timeout_sends_nothing_while_it_lasts_then_closes(proxy: ChaosProxy) -> None:
    proxy.add_toxic("timeout", 0.5)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert time.monotonic() - started >= 0.45
    assert httpx.get(_url(proxy)).text == "ok"  # over: traffic flows again


def test_http_error_answers_a_share_of_requests_with_503(proxy: ChaosProxy) -> None:
    n, share = 200, 0.3
    proxy.add_toxic("http_error", 60, {"share": share, "status": 503})
    with httpx.Client() as client:
        codes = [client.get(_url(proxy)).status_code for _ in range(n)]
    errors = codes.count(503)
    assert set(codes) == {200, 503}
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(errors - n * share) <= 4 * sigma


def test_a_toxic_ends_after_its_duration(proxy: ChaosProxy) -> None:
    proxy.add_toxic("http_error", 0.2, {"share": 1.0})
    assert httpx.get(_url(proxy)).status_code == 503
    deadline = time.monotonic() + 5
    while proxy.active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(_url(proxy)).status_code == 200


def test_a_down_upstream_is_a_connection_error(server: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    p = ChaosProxy(nobody)
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(_url(p))
        p.set_upstream(server)  # the SUT restarted elsewhere: the proxy's port stays
        assert httpx.get(_url(p)).text == "ok"
    finally:
        p.close()


def test_the_proxy_counts_the_requests_its_toxics_failed(proxy: ChaosProxy) -> None:
    with httpx.Client() as client:
        assert client.get(_url(proxy)).status_code == 200
        assert proxy.injected() == {}  # nothing injected: nothing counted
        proxy.add_toxic("http_error", 60, {"share": 1.0, "status": 503})
        codes = [client.get(_url(proxy)).status_code for _ in range(3)]
    assert codes == [503, 503, 503]
    assert proxy.injected() == {"http_error": 3}  # counted before the client saw each answer
    proxy.clear_toxics()
    proxy.add_toxic("reset_peer", 60)
    with pytest.raises(httpx.TransportError):
        httpx.get(_url(proxy))
    assert proxy.injected() == {"http_error": 3, "reset_peer": 1}


def test_a_share_of_zero_fails_and_counts_nothing(proxy: ChaosProxy) -> None:
    proxy.add_toxic("http_error", 60, {"share": 0.0})
    proxy.add_toxic("latency", 60, {"ms": 1})  # slows, fails nothing: never counted
    with httpx.Client() as client:
        assert [client.get(_url(proxy)).status_code for _ in range(5)] == [200] * 5
    assert proxy.injected() == {}
