"""The inventory service with its planted defects, from ``[tool.testfleet.sut]``."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def base_url(testfleet_instance: Any) -> str:
    return str(testfleet_instance.base_url)
