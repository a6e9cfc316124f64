from __future__ import annotations

import json
import socket
from typing import Any

import pytest


class Client:
    """One connection; ``call`` sends a request line and reads its answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rwb")

    def call(self, **request: Any) -> dict:
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        assert line, f"connection closed after {request}"
        return json.loads(line)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def kv(testfleet_instance: Any) -> Client:
    client = Client(testfleet_instance.port)
    yield client
    client.close()


@pytest.fixture
def limits(testfleet_instance: Any) -> dict:
    return dict(testfleet_instance.config)
