from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def client(testfleet_instance: Any) -> httpx.Client:
    # plain http on localhost: no TLS context (loading the CA bundle costs 40 ms a client)
    with httpx.Client(base_url=testfleet_instance.base_url, timeout=10.0, verify=False) as c:
        yield c
