"""Prometheus exposition parsing, scraping a real HTTP server, and the sampler probe."""

from __future__ import annotations

import http.server
import math
import socket
import threading

import pytest

from testfleet.errors import TestfleetError
from testfleet.telemetry.prometheus import (
    PrometheusProbe,
    TelemetryError,
    flat_name,
    parse_metrics,
    scrape,
)

from .thread_sampler import Sampler

EXPOSITION = r"""# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A free comment
# HELP queue_depth Items waiting.
# TYPE queue_depth gauge
queue_depth{queue="a\"b\\c\nd"} 7.5
queue_depth{queue="plain"} -2
temperature_celsius 21.25

# HELP request_seconds A histogram of request durations.
# TYPE request_seconds histogram
request_seconds_bucket{le="0.05"} 24054
request_seconds_bucket{le="0.1"} 33444
request_seconds_bucket{le="+Inf"} 144320
request_seconds_sum 53423
request_seconds_count 144320

# HELP rpc_seconds A summary of RPC durations.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 4773
rpc_seconds{quantile="0.99"} 76656
rpc_seconds_sum 1.7560473e+07
rpc_seconds_count 2693
"""

EXPECTED = {
    'http_requests_total{code="200",method="post"}': 1027.0,
    'http_requests_total{code="400",method="post"}': 3.0,
    'queue_depth{queue="a\\"b\\\\c\\nd"}': 7.5,
    'queue_depth{queue="plain"}': -2.0,
    "temperature_celsius": 21.25,
    'request_seconds_bucket{le="0.05"}': 24054.0,
    'request_seconds_bucket{le="0.1"}': 33444.0,
    'request_seconds_bucket{le="+Inf"}': 144320.0,
    "request_seconds_sum": 53423.0,
    "request_seconds_count": 144320.0,
    'rpc_seconds{quantile="0.5"}': 4773.0,
    'rpc_seconds{quantile="0.99"}': 76656.0,
    "rpc_seconds_sum": 1.7560473e07,
    "rpc_seconds_count": 2693.0,
}


def test_parse_realistic_exposition():
    assert parse_metrics(EXPOSITION) == EXPECTED


def test_parse_empty_and_special_values():
    assert parse_metrics("") == {}
    assert parse_metrics("# only a comment\n") == {}
    values = parse_metrics("a NaN\nb +Inf\nc -Inf\n")
    assert math.isnan(values["a"]) and values["b"] == math.inf and values["c"] == -math.inf


def test_flat_name_escapes_and_sorts():
    assert flat_name("m", {}) == "m"
    assert flat_name("m", {"z": "1", "a": 'q"\\\n'}) == 'm{a="q\\"\\\\\\n",z="1"}'


@pytest.mark.parametrize("bad, line", [
    ("ok 1\nbroken{a=\"b\" 1\n", 2),
    ("# TYPE x gauge\nx not_a_number\n", 2),
    ("x{a=\"b\"}\n", 1),
])
def test_malformed_text_raises_naming_the_line(bad, line):
    with pytest.raises(TelemetryError) as info:
        parse_metrics(bad)
    assert isinstance(info.value, TestfleetError)  # one message to the user, never a traceback
    assert f"line {line}" in str(info.value)
    assert bad.splitlines()[line - 1].strip() in str(info.value)


def test_non_str_is_rejected():
    with pytest.raises(TelemetryError):
        parse_metrics(b"x 1\n")  # type: ignore[arg-type]


class _Handler(http.server.BaseHTTPRequestHandler):
    body = EXPOSITION

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        data = self.server.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.body = EXPOSITION
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv, path="/metrics"):
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scrape_real_server(server):
    assert scrape(_url(server)) == EXPECTED


def test_scrape_errors(server):
    with pytest.raises(TelemetryError, match="404"):
        scrape(_url(server, "/nope"))
    server.body = "x{ 1\n"
    with pytest.raises(TelemetryError, match="line 1"):
        scrape(_url(server))
    with pytest.raises(TelemetryError):
        scrape(f"http://127.0.0.1:{_dead_port()}/metrics", timeout=0.5)


def test_probe_prefixes_and_drops_non_finite(server):
    server.body = EXPOSITION + "weird NaN\n"
    with PrometheusProbe(_url(server)) as probe:
        values = probe()
    assert values == {f"prom.{k}": v for k, v in EXPECTED.items()}
    assert probe.errors == 0 and probe.scrapes == 1


def test_probe_against_dead_port_returns_empty():
    with PrometheusProbe(f"http://127.0.0.1:{_dead_port()}/metrics", timeout=0.5) as probe:
        assert probe() == {}
        assert probe() == {}
    assert probe.errors == 2
    assert probe.last_error


def test_probe_in_sampler(server):
    with PrometheusProbe(_url(server)) as probe:
        sampler = Sampler([probe], interval=0.02)
        with sampler:
            deadline = threading.Event()
            while len(sampler) < 3 and not deadline.wait(0.02):
                pass
        assert sampler.errors == 0
        assert sampler.samples()[0].values["prom.temperature_celsius"] == 21.25
