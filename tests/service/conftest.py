"""Fixtures of the service tests. Read API (``read_*``): a real DuckDB store filled through the
Store's own write API with two runs of a small suite (a base run and a later one with new
failures, fixes, slower tests, retries, explored variants and telemetry), and the read router
mounted on a FastAPI app over it, as ``testfleet serve`` mounts it.

Every value is drawn from a seeded generator: the same store on every run.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testfleet.model import Case, Outcome, Result, Run, RunStatus, Variant
from testfleet.service import api_read
from testfleet.service.errors import install_error_handlers
from testfleet.service.hub import EventHub
from testfleet.service.state import ServiceState
from testfleet.store.db import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class ReadData:
    """What :func:`fill_read_store` wrote: the two runs' ids and the nodeids it made differ."""

    base: str
    run: str
    new_failures: set[str]
    fixed: set[str]
    slower: set[str]
    spec_ids: list[str]
    snapshot_ids: list[str]


def _result(run_id: str, variant: Variant, nodeid: str, outcome: Outcome, *, worker: str,
            duration: float, finished: datetime | None, attempt: int = 1, final: bool = True,
            flaky: bool = False) -> Result:
    return Result(run_id=run_id, variant_id=variant.variant_id, case_id=variant.case_id,
                  nodeid=nodeid, attempt=attempt, worker=worker, outcome=outcome,
                  duration=duration, started_at=None if finished is None else finished - timedelta(seconds=duration),
                  finished_at=finished, final=final, flaky=flaky,
                  message="assert 1 == 2" if outcome == Outcome.failed else "")


def fill_read_store(store: Store, root: Path, seed: int = 7) -> ReadData:
    """Two runs of 30 tests on workers w0/w1 (see :class:`ReadData`), telemetry of the second,
    two snapshots and three spec versions."""
    rng = random.Random(seed)
    cases = [Case(case_id=f"c{i:02d}", nodeid=f"tests/test_m.py::test_{i:02d}", file="tests/test_m.py")
             for i in range(30)]
    variants = [Variant.of(c) for c in cases]
    explored = [Variant.of(cases[0], {"size": s, "mode": m}, origin="random")
                for s, m in ((3, "a"), (5, "b"), (8, "a"))]
    store.add_variants([*variants, *explored])
    base_failing = {3, 7, 11}
    new_failing = {7, 11, 20, 21}
    slower = {5, 6}
    data = ReadData("run-base", "run-new", {cases[i].nodeid for i in new_failing - base_failing},
                    {cases[i].nodeid for i in base_failing - new_failing}, {cases[i].nodeid for i in slower},
                    [], [])
    for run_id, start, failing in ((data.base, T0, base_failing), (data.run, T0 + timedelta(hours=1), new_failing)):
        store.begin_run(Run(run_id=run_id, started_at=start, rootdir=str(root), workers=2, seed=seed))
        store.add_cases(cases, run_id=run_id)
        results = []
        for i, (case, variant) in enumerate(zip(cases, variants)):
            worker = f"w{i % 2}"
            duration = round(rng.uniform(0.01, 0.05), 4)
            if run_id == data.run and i in slower:
                duration += 1.0
            # a few results without a finish time (a lost worker's): they sort last
            finished = None if i in (13, 27) else start + timedelta(seconds=rng.randint(1, 20), milliseconds=i)
            if i == 9:  # retried: failed, then passed (flaky)
                results.append(_result(run_id, variant, case.nodeid, Outcome.failed, worker=worker,
                                       duration=duration, finished=finished, final=False))
                results.append(_result(run_id, variant, case.nodeid, Outcome.passed, worker="w1",
                                       duration=duration, attempt=2, flaky=True,
                                       finished=None if finished is None else finished + timedelta(seconds=1)))
                continue
            outcome = Outcome.failed if i in failing else Outcome.skipped if i == 15 else Outcome.passed
            results.append(_result(run_id, variant, case.nodeid, outcome, worker=worker,
                                   duration=duration, finished=finished))
        if run_id == data.run:
            for k, variant in enumerate(explored):
                results.append(_result(run_id, variant, cases[0].nodeid,
                                       Outcome.failed if k == 2 else Outcome.passed, worker="w0",
                                       duration=0.02, finished=start + timedelta(seconds=30 + k)))
        store.append_results(results)
        counts: dict[str, int] = {}
        for r in results:
            if r.final:
                counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
        store.finish_run(Run(run_id=run_id, started_at=start, finished_at=start + timedelta(seconds=40),
                             status=RunStatus.finished, exit_code=1, counts=counts, collected=30,
                             duration=40.0, flaky=1, rootdir=str(root), workers=2, seed=seed))
    from testfleet.store.telemetry import TelemetryStore

    samples = [(f"w{w}", 1_767_600_000.0 + s * 0.5, metric, float("nan") if (w, s, metric) == (1, 3, "cpu")
                else rng.uniform(0, 100)) for w in range(2) for s in range(40) for metric in ("cpu", "rss", "fds")]
    TelemetryStore(store).append_series(data.run, *map(list, zip(*samples)))
    from testfleet.snapshots.store import SnapshotStore

    (root / "settings.toml").write_text("workers = 2\n")
    (root / "space.yaml").write_text("dimensions:\n  size: {type: int, min: 1, max: 9}\n"
                                     "  mode: {type: choice, values: [a, b]}\n")
    snapshots = SnapshotStore(store)
    data.snapshot_ids = [snapshots.save([root / "settings.toml"], meta={"role": "settings"}),
                         snapshots.save([root / "space.yaml"], tags=["space"])]
    from testfleet.analysis.spec_results import record_versions
    from testfleet.specs.language import specs

    record_versions(store, specs([{"id": "fast", "then": "passes"}, {"id": "quiet", "then": "passes"}]))
    record_versions(store, specs([{"id": "fast", "version": 2, "then": "passes"}]))
    data.spec_ids = ["fast", "quiet"]
    return data


@dataclass
class ReadService:
    """The read API over a filled store: ``client`` drives the real ASGI app in process."""

    app: FastAPI
    client: TestClient
    state: ServiceState
    data: ReadData
    root: Path


def read_app(state: ServiceState) -> FastAPI:
    """A FastAPI app with the read router and the JSON errors, as ``testfleet serve`` builds it."""
    app = FastAPI(title="testfleet (read API)")
    app.state.service = state
    install_error_handlers(app)
    app.include_router(api_read.router)
    return app


@contextmanager
def served_on_loopback(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL. The
    socket listens before uvicorn starts, so a first request waits in its backlog, never refused."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def read_service(tmp_path: Path) -> Iterator[ReadService]:
    root = tmp_path / "project"
    root.mkdir()
    store = Store.open(tmp_path / "store.duckdb")
    data = fill_read_store(store, root)
    state = ServiceState(store=store, hub=EventHub(), workdir=tmp_path / "work")
    app = read_app(state)
    with TestClient(app) as client:
        yield ReadService(app, client, state, data, root)
    store.close()
