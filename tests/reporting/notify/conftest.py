"""Local stand-ins for the services notifications go to, and stored runs to notify about.

:class:`FakeService` is a real HTTP server on 127.0.0.1 (``http.server`` in a thread) whose answers
a test decides with a function of the request; every request it gets is kept, body and headers,
for the test to check against the service's documented shape. Runs are written to a real DuckDB
store with the store's own API.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from testfleet.model import Case, Result, Run, RunStatus, Variant
from testfleet.reporting.notify.config import Delivery
from testfleet.store.db import Store

SCHEMAS = Path(__file__).parent / "schemas"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]  # status, JSON body (or text)


@dataclass
class FakeService:
    answer: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def service() -> Iterator[Callable[[Callable[[Request], Answer]], FakeService]]:
    """``service(answer)``: start a fake service answering with ``answer(request)``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Callable[[Request], Answer]) -> FakeService:
        fake = FakeService(answer)

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                fake.requests.append(request)
                status, body = fake.answer(request)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        fake.port = server.server_address[1]
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FAST = Delivery(attempts=3, backoff=0.001, max_delay=0.01, timeout=5.0, deadline=20.0)
"""A delivery policy with tiny waits, so retries cost no time in tests."""


def longrepr(file: str, line: int, exception: str, message: str, function: str = "test_it") -> str:
    """A failure's text in pytest's long layout: the test's frame, then ``file:line: Exception``."""
    return (f"    def {function}():\n>       raise {exception}({message!r})\nE       {exception}: {message}\n\n"
            f"{file}:{line}: {exception}")


@dataclass
class Outcome:
    nodeid: str
    outcome: str = "passed"
    message: str = ""
    line: int | None = None
    flaky: bool = False

    def result(self, run_id: str) -> Result:
        file = self.nodeid.split("::")[0]
        text = ""
        if self.outcome == "failed":
            exception, _, text_message = self.message.partition(": ")
            function = self.nodeid.split("::")[-1].split("[")[0]  # a parametrized test's function
            text = longrepr(file, self.line or 3, exception, text_message, function)
        case = Case.from_nodeid(self.nodeid, file=file, line=1)
        return Result(run_id=run_id, variant_id=Variant.of(case).variant_id, case_id=case.case_id,
                      nodeid=self.nodeid, outcome=self.outcome, message=self.message, longrepr=text,
                      file=file, line=1, categories=[self.outcome], flaky=self.flaky)


_CLOCK = datetime(2026, 1, 1, tzinfo=UTC)


def store_run(store: Store, run_id: str, outcomes: list[Outcome], *, rootdir: str = "/work/project",
              minute: int = 0, exit_code: int | None = None) -> Run:
    """Record a finished run with these results (one final attempt each)."""
    started = _CLOCK + timedelta(minutes=minute)
    run = Run(run_id=run_id, started_at=started, rootdir=rootdir, git_sha="abc1234def")
    store.begin_run(run)
    results = [o.result(run_id) for o in outcomes]
    store.append_results(results)
    counts: dict[str, int] = {}
    for result in results:
        counts[str(result.outcome)] = counts.get(str(result.outcome), 0) + 1
    failed = any(o.outcome in ("failed", "error") for o in outcomes)
    run = run.model_copy(update={"finished_at": started + timedelta(seconds=5), "status": RunStatus.finished,
                                 "exit_code": (1 if failed else 0) if exit_code is None else exit_code,
                                 "counts": counts, "flaky": sum(o.flaky for o in outcomes), "duration": 5.0})
    store.finish_run(run)
    return run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "notify.duckdb") as db:
        yield db


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())
