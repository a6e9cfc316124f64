"""Schemathesis against the read API's own OpenAPI document, over real HTTP on 127.0.0.1:
whatever parameters the schema allows (and values it does not), the server answers without a
5xx, with a status code, content type and body the document declares.

The app runs under uvicorn over a real DuckDB store (the read fixtures' two runs, and a live run
in the hub); generation is derandomised and small, so the test is the same on every run and
takes seconds.
"""

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

from service.conftest import fill_read_store, read_app, served_on_loopback
from testfleet.service.hub import EventHub
from testfleet.service.state import ServiceState
from testfleet.store.db import Store

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def read_api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    root = tmp / "project"
    root.mkdir()
    store = Store.open(tmp / "store.duckdb")
    fill_read_store(store, root)
    hub = EventHub()  # and one live run (older than the stored ones: 'last' is stored)
    hub.publish({"run_id": "live-1", "kind": "run", "t": 1_767_000_000.0, "status": "running",
                 "argv": ["tests"], "paths": ["tests"]})
    hub.publish({"run_id": "live-1", "kind": "result", "t": 1_767_700_001.0, "nodeid": "t.py::a",
                 "outcome": "failed", "attempt": 1, "final": True, "flaky": False, "worker": "w0",
                 "duration": 0.1, "message": "boom", "longrepr": "Traceback", "origin": "baseline",
                 "done": 1, "total": 2})
    app = read_app(ServiceState(store=store, hub=hub, workdir=tmp / "work"))
    # The document's example run ('last') plus the fixture's real runs, stored and live: the
    # examples phase then reaches every answer, not only "no such run".
    document = app.openapi()
    for path in document["paths"].values():
        for parameter in path["get"].get("parameters", []):
            if parameter["name"] in ("run_id", "base"):
                parameter["schema"]["examples"] = ["last", "run-base", "live-1", "run"]
    app.openapi_schema = document
    with served_on_loopback(app) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    store.close()


schema = schemathesis.pytest.from_fixture("read_api_schema")


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_read_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
