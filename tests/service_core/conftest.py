"""A real ``testfleet serve`` process on 127.0.0.1 (a free port), and real ``testfleet submit``
processes: what a user runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from execution.conftest import TIMEOUT, Ran, clean_env
from websockets.sync.client import connect


@dataclass
class Server:
    url: str
    store: Path
    process: subprocess.Popen[str]
    token: str | None = None  # the one the server generated and printed (an address off loopback)
    log: list[str] = field(default_factory=list)

    def submit(self, cwd: Path, *args: str, timeout: float = TIMEOUT) -> Ran:
        argv = [sys.executable, "-m", "testfleet", "submit", "--server", self.url, *args]
        proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        return Ran(argv, proc.returncode, proc.stdout, proc.stderr, store=self.store)

    def start_submit(self, cwd: Path, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "testfleet", "submit", "--server", self.url, *args]
        return subprocess.Popen(argv, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def events(self, path: str = "/ws/events", after: int = 0,
               until: Any = None, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Events of a WebSocket until ``until(event)`` holds (or the server closes it)."""
        out: list[dict[str, Any]] = []
        with connect(self.url.replace("http", "ws", 1) + f"{path}?after={after}", proxy=None) as websocket:
            while True:
                try:
                    event = json.loads(websocket.recv(timeout=timeout))
                except Exception:  # the server closed the stream (the run ended)
                    return out
                out.append(event)
                if until is not None and until(event):
                    return out

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=60, **kwargs)

    def stop(self) -> int:
        """Ctrl-C the server; its exit code (its store is then free to open)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail("the server did not stop within 120 s of Ctrl-C")
        return self.process.returncode


def start_server(tmp_path: Path, *args: str) -> Server:
    store = tmp_path / "server.duckdb"
    argv = [sys.executable, "-m", "testfleet", "serve", "--port", "0", "--store", str(store), *args]
    process = subprocess.Popen(argv, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()  # "testfleet serving STORE on URL", printed once it listens
    if " on http://" not in first:
        process.kill()
        pytest.fail(f"the server did not start: {first}{process.stdout.read()}")
    url = first.rsplit(" on ", 1)[1].strip().replace("//0.0.0.0:", "//127.0.0.1:")
    token = None
    second = process.stdout.readline()  # the generated token, or the dashboard's URL
    if second.startswith("token"):
        token = second.rsplit(": ", 1)[1].strip()
    os.set_blocking(process.stdout.fileno(), False)
    return Server(url=url, store=store, process=process, token=token)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path)
    try:
        yield running
    finally:
        running.stop()
