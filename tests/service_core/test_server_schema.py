"""Schemathesis against a real ``testfleet serve``'s own OpenAPI document, every operation of it
(submitting and cancelling included), over HTTP on 127.0.0.1: no 5xx, and every answer is one the
document declares. Generation is derandomised and small, so the test is the same on every run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import start_server



@schemathesis.serializer("application/gzip")
def _as_bytes(_context: object, value: object) -> bytes:
    """The archive body as Schemathesis generates it (a binary string): sent as it is; the server
    must refuse whatever is not a real project archive with a 4xx."""
    return value if isinstance(value, bytes) else str(value).encode()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def server_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp: Path = tmp_path_factory.mktemp("served")
    server = start_server(tmp)
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        assert server.stop() == 0


schema = schemathesis.pytest.from_fixture("server_schema")


@schema.parametrize()
@settings(max_examples=10, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_of_the_server_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
