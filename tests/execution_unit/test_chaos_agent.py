"""The worker's side of --chaos: the proxy it puts in front of its SUT instance keeps its port
across restarts, and the orders the injector writes reach that proxy and the worker's memory."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from testfleet.execution.chaos import agent


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def _until(check: object, limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_orders_reach_the_proxy_and_the_memory_of_the_worker(tmp_path: Path, server: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agent.ENV_CHAOS_DIR, str(tmp_path))
    port = agent.front("gwt", server, sut_pid=4321)
    assert agent.front("gwt", server, sut_pid=4322) == port  # a restarted SUT keeps the address
    assert json.loads((tmp_path / "sut-gwt.json").read_text()) == {"pid": 4322, "port": server, "proxy_port": port}
    url = f"http://127.0.0.1:{port}/"
    assert httpx.get(url).text == "ok"

    agent.start_agent("gwt")
    assert json.loads((tmp_path / "worker-gwt.json").read_text())["pid"] > 0
    rss = psutil.Process().memory_info().rss
    orders = [{"fault": "http_error", "duration": 30, "params": {"share": 1.0, "status": 503}},
              {"fault": "fill_memory", "duration": 1.0, "params": {"mib": 64}}]
    (tmp_path / "orders-gwt.json").write_text(json.dumps(orders))
    assert _until(lambda: httpx.get(url).status_code == 503)
    before = agent.injected()
    assert before.get("http_error", 0) >= 1  # the process's proxies count what they failed
    assert httpx.get(url).status_code == 503
    assert agent.injected_since(before) == {"http_error": 1}  # what a test's own request met
    assert _until(lambda: psutil.Process().memory_info().rss - rss >= 48 * 2**20)
    assert _until(lambda: psutil.Process().memory_info().rss - rss < 32 * 2**20)  # released after 1 s
    agent._PROXIES.pop("gwt").close()
