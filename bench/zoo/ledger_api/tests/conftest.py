from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def client(testfleet_instance: Any) -> httpx.Client:
    with httpx.Client(base_url=testfleet_instance.base_url, timeout=10.0) as c:
        yield c
