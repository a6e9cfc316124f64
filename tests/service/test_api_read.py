"""The read API over a real DuckDB store: what each endpoint answers, its filters, its pages
(every row exactly once, in the store's order), live runs from the hub, and the JSON errors.

Most tests drive the real ASGI app in process (``TestClient``); the end-to-end test runs
``testfleet run`` on a small suite and reads its store through uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.conftest import ReadService, read_app, served_on_loopback
from testfleet.model import Result
from testfleet.service.api_cursor import decode_cursor, encode_cursor
from testfleet.service.errors import ApiError
from testfleet.service.hub import EventHub
from testfleet.service.state import ServiceState
from testfleet.store.db import Store


def pages(client: Any, url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paginated list, following ``next``; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor, count = None, 0
    while True:
        response = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        count += 1
        cursor = body["next"]
        if cursor is None:
            return items, count
        assert count < 10_000, "the cursor never ends"


def key(item: dict[str, Any] | Result) -> tuple[str, int, str]:
    if isinstance(item, Result):
        return item.nodeid, item.attempt, item.worker
    return item["nodeid"], item["attempt"], item["worker"]


def stored_results(service: ReadService, run_id: str) -> list[Result]:
    with service.state.reader() as db:
        return db.results(run_id)


# -- runs ------------------------------------------------------------------------------------

def test_runs_are_listed_newest_first_and_last_is_the_newest(read_service: ReadService) -> None:
    data, client = read_service.data, read_service.client
    runs = client.get("/runs").json()
    assert [r["run_id"] for r in runs["items"]] == [data.run, data.base]
    assert runs["next"] is None
    assert client.get("/runs/last").json()["run_id"] == data.run
    one = client.get(f"/runs/{data.base}").json()
    assert one["status"] == "finished" and one["live"] is False
    assert one["counts"] == {"passed": 26, "failed": 3, "skipped": 1}
    assert client.get("/runs/run-b").json()["run_id"] == data.base  # a unique prefix, as in the CLI
    first, second = client.get("/runs", params={"limit": 1}).json(), None
    assert [r["run_id"] for r in first["items"]] == [data.run] and first["next"]
    second = client.get("/runs", params={"limit": 1, "cursor": first["next"]}).json()
    assert [r["run_id"] for r in second["items"]] == [data.base] and second["next"] is None


def test_an_unknown_run_is_404_and_an_ambiguous_prefix_400(read_service: ReadService) -> None:
    client = read_service.client
    for url in ("/runs/nope", "/runs/nope/results", "/runs/nope/telemetry", "/runs/nope/coverage",
                "/runs/nope/analysis", "/runs/nope/diff"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"error": {
            "message": "no run 'nope'", "source": "request", "place": "run_id",
            "expected": "a run id, a unique prefix of one, or 'last' (see `testfleet runs`)"}}
    ambiguous = client.get("/runs/run")
    assert ambiguous.status_code == 400
    assert "ambiguous" in ambiguous.json()["error"]["message"]


# -- results ---------------------------------------------------------------------------------

def test_result_pages_cover_every_row_once_in_the_store_order(read_service: ReadService) -> None:
    run = read_service.data.run
    expected = [key(r) for r in stored_results(read_service, run)]
    items, count = pages(read_service.client, f"/runs/{run}/results", limit=7)
    assert [key(i) for i in items] == expected
    assert count == math.ceil(len(expected) / 7)
    assert items[-1]["finished_at"] is None  # results without a finish time come last
    # one row a page: every boundary is crossed, those between rows without a finish time too
    singles, count = pages(read_service.client, f"/runs/{run}/results", limit=1)
    assert singles == items and count == len(expected)
    one_page, count = pages(read_service.client, f"/runs/{run}/results", limit=1000)
    assert one_page == items and count == 1


@pytest.mark.parametrize("params, keep", [
    ({"outcome": "failed"}, lambda r: r.outcome == "failed"),
    ({"outcome": ["failed", "skipped"]}, lambda r: r.outcome in ("failed", "skipped")),
    ({"worker": "w1"}, lambda r: r.worker == "w1"),
    ({"final": "false"}, lambda r: not r.final),
    ({"final": "true", "outcome": "passed"}, lambda r: r.final and r.outcome == "passed"),
    ({"case": "tests/test_m.py::test_00"}, lambda r: r.nodeid == "tests/test_m.py::test_00"),
    ({"case": "c09"}, lambda r: r.case_id == "c09"),
])
def test_result_filters_keep_exactly_the_matching_rows(read_service: ReadService, params: dict[str, Any],
                                                       keep: Any) -> None:
    run = read_service.data.run
    expected = [key(r) for r in stored_results(read_service, run) if keep(r)]
    assert expected, "the fixture must have rows for each filter"
    items, _ = pages(read_service.client, f"/runs/{run}/results", limit=3, **params)
    assert [key(i) for i in items] == expected


def test_results_carry_their_variant_origin_and_params(read_service: ReadService) -> None:
    items, _ = pages(read_service.client, "/runs/last/results", case="tests/test_m.py::test_00")
    explored = {i["params"]["size"]: i["origin"] for i in items if i["params"]}
    assert explored == {3: "random", 5: "random", 8: "random"}
    assert [i["origin"] for i in items if not i["params"]] == ["baseline"]


@pytest.mark.parametrize("params, place", [
    ({"outcome": "exploded"}, "query.outcome.0"),
    ({"limit": "0"}, "query.limit"),
    ({"limit": "1001"}, "query.limit"),
    ({"limit": "ten"}, "query.limit"),
    ({"final": "perhaps"}, "query.final"),
])
def test_malformed_filters_are_422_with_the_json_error(read_service: ReadService, params: dict[str, str],
                                                      place: str) -> None:
    response = read_service.client.get("/runs/last/results", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["place"] == place


def test_a_bad_cursor_is_400_at_cursor(read_service: ReadService) -> None:
    client = read_service.client
    runs_cursor = client.get("/runs", params={"limit": 1}).json()["next"]
    tampered = encode_cursor("result", ["not a time", "x", 1, 0])
    for cursor in ("garbage!", "", runs_cursor, tampered, "W10", "x" * 5000):
        response = client.get("/runs/last/results", params={"cursor": cursor})
        if cursor == "":  # an empty cursor is no cursor: the first page
            assert response.status_code == 200
            continue
        assert response.status_code == 400, cursor
        assert response.json()["error"]["place"] == "cursor"


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=200))
def test_any_cursor_text_decodes_or_is_refused_as_a_400(text: str) -> None:
    try:
        kind, key = decode_cursor(text, {"result": (int, str, int, int)})
    except ApiError as exc:
        assert exc.status == 400 and exc.body.place == "cursor"
    else:
        assert kind == "result" and [type(v) for v in key] == [int, str, int, int]


@settings(max_examples=200, derandomize=True)
@given(st.integers(-(2**63), 2**63 - 1), st.text(max_size=50), st.floats(allow_nan=False, allow_infinity=False))
def test_a_cursor_round_trips_its_key(number: int, text: str, real: float) -> None:
    cursor = encode_cursor("k", [number, text, real])
    assert decode_cursor(cursor, {"k": (int, str, float)}) == ("k", [number, text, real])


# -- telemetry -------------------------------------------------------------------------------

def test_telemetry_pages_filters_and_a_nan_sample_as_null(read_service: ReadService) -> None:
    client = read_service.client
    everything, count = pages(client, "/runs/last/telemetry", limit=50)
    assert len(everything) == 2 * 40 * 3 and count == math.ceil(240 / 50)
    assert [p["t"] for p in everything] == sorted(p["t"] for p in everything)
    assert len({(p["worker"], p["t"], p["metric"]) for p in everything}) == 240  # each sample once
    cpu, _ = pages(client, "/runs/last/telemetry", metric="c*", worker="w1", limit=7)
    assert len(cpu) == 40 and {(p["metric"], p["worker"]) for p in cpu} == {("cpu", "w1")}
    assert [p["value"] for p in cpu].count(None) == 1  # the NaN sample: JSON has no NaN
    assert client.get("/runs/run-base/telemetry").json() == {"items": [], "next": None}


# -- coverage, analysis, diff ----------------------------------------------------------------

def test_coverage_counts_executions_by_source_and_measures_a_space(read_service: ReadService) -> None:
    client = read_service.client
    plain = client.get("/runs/last/coverage").json()
    assert plain["coverage"] is None
    assert plain["by_origin"] == [
        {"origin": "baseline", "variants": 30, "executions": 30, "failures": 4},
        {"origin": "random", "variants": 3, "executions": 3, "failures": 1}]
    measured = client.get("/runs/last/coverage", params={"space": "space.yaml"}).json()
    # space.yaml: size in 1..9, mode a or b; the run explored (3, a), (5, b), (8, a) (baselines
    # have neither); what `testfleet space coverage` measures, with the heatmap's matrix
    coverage = measured["coverage"]
    assert coverage["rows"] == 3 and coverage["strength"] == 2
    assert 0 < coverage["covered_tuples"] < coverage["valid_tuples"]
    assert coverage["names"] == ["size", "mode"]
    assert len(coverage["matrix"]) == 2 and coverage["matrix"][0][1] == coverage["simple"]
    assert coverage["pair_details"][0]["failed"] is not None  # outcomes known: failures per pair
    for space in ("../store.duckdb", "/etc/passwd", "missing.yaml"):
        response = client.get("/runs/last/coverage", params={"space": space})
        assert response.status_code == 400, space
        assert response.json()["error"]["message"]
    # the measures are the CLI's: `testfleet space coverage space.yaml --run last --json`
    import json

    from execution.conftest import run_cli

    read_service.state.store.close()  # the CLI's reader needs the file to itself
    ran = run_cli(read_service.root, "space", "coverage", "space.yaml", "--run", "last", "--store",
                  read_service.state.store.path, "--json", read_service.root / "cov.json")
    assert ran.returncode == 0, ran.log
    cli = json.loads((read_service.root / "cov.json").read_text())
    assert {k: coverage[k] for k in cli} == cli


def test_analysis_is_what_testfleet_analyze_json_writes(read_service: ReadService, tmp_path: Path) -> None:
    import json

    from testfleet.cli.analyze import gather, to_json
    from testfleet.jsonable import jsonable

    answer = read_service.client.get("/runs/last/analysis", params={"seed": 3}).json()
    assert answer["runs"] == [read_service.data.run]
    assert answer["clusters"], "the run has failures to cluster"
    path = read_service.state.store.path
    read_service.state.store.close()  # the CLI's reader needs the file to itself
    cli = json.loads(json.dumps(jsonable(to_json(gather(str(path), "last", 1, 0.05, 0, 3)))))
    for document in (answer, cli):  # how long each step took differs from call to call
        assert document["analysis"].pop("timings")
    assert answer == cli


def test_diff_names_new_failures_fixes_and_slower_tests(read_service: ReadService) -> None:
    data, client = read_service.data, read_service.client
    diff = client.get(f"/runs/{data.run}/diff").json()  # the base: the run before it
    assert diff["base"] == data.base
    baseline_new = {e["nodeid"] for e in diff["new_failures"] if e["base_outcome"] is not None}
    assert baseline_new == data.new_failures
    assert [e["base_outcome"] for e in diff["new_failures"] if e["nodeid"] not in data.new_failures] == [None]
    assert {e["nodeid"] for e in diff["fixed"]} == data.fixed
    assert {e["nodeid"] for e in diff["slower"]} == data.slower
    assert all(e["duration"] >= 1.5 * e["base_duration"] for e in diff["slower"])
    assert client.get(f"/runs/{data.run}/diff", params={"base": data.base}).json() == diff
    assert client.get(f"/runs/{data.run}/diff", params={"min_ratio": 1000}).json()["slower"] == []
    unknown = client.get(f"/runs/{data.run}/diff", params={"base": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["place"] == "base"
    first = client.get(f"/runs/{data.base}/diff")
    assert first.status_code == 400 and first.json()["error"]["place"] == "base"


# -- snapshots, specs ------------------------------------------------------------------------

def test_snapshots_and_specs_page_through_every_entry(read_service: ReadService) -> None:
    client = read_service.client
    snapshots, count = pages(client, "/snapshots", limit=1)
    assert count == 2
    assert sorted(s["snapshot_id"] for s in snapshots) == sorted(read_service.data.snapshot_ids)
    assert [s["created_at"] for s in snapshots] == sorted((s["created_at"] for s in snapshots), reverse=True)
    assert {s["snapshot_id"]: s["tags"] for s in snapshots}[read_service.data.snapshot_ids[1]] == ["space"]
    specs, count = pages(client, "/specs", limit=2)
    assert [(s["spec_id"], s["version"]) for s in specs] == [("fast", "1"), ("fast", "2"), ("quiet", "1")]
    assert count == 2
    fast, _ = pages(client, "/specs", spec_id="fast")
    assert [s["version"] for s in fast] == ["1", "2"]


# -- live runs -------------------------------------------------------------------------------

def _live_result(hub: EventHub, run_id: str, i: int, outcome: str, worker: str) -> None:
    hub.publish({"run_id": run_id, "kind": "result", "t": 1_800_000_000.0 + i, "nodeid": f"t.py::test_{i}",
                 "outcome": outcome, "attempt": 1, "final": True, "flaky": False, "worker": worker,
                 "duration": 0.5, "message": "boom" if outcome == "failed" else "",
                 "longrepr": "Traceback..." if outcome == "failed" else None, "origin": "baseline",
                 "done": i + 1, "total": 6})


def test_a_live_run_is_answered_from_its_events(read_service: ReadService) -> None:
    hub, client = read_service.state.hub, read_service.client
    hub.publish({"run_id": "live", "kind": "run", "t": 1_800_000_000.0, "status": "running",
                 "argv": ["tests", "-x"], "paths": ["tests"]})
    hub.publish({"run_id": "live", "kind": "collected", "t": 1_800_000_000.5, "total": 6, "deselected": 1,
                 "workers": 2})
    hub.publish({"run_id": "live", "kind": "console", "t": 1_800_000_000.6, "text": "hello"})
    for i in range(5):
        _live_result(hub, "live", i, "failed" if i in (1, 3) else "passed", f"w{i % 2}")
    run = client.get("/runs/live").json()
    assert run["live"] is True and run["status"] == "running"
    assert (run["collected"], run["deselected"], run["workers"]) == (6, 1, 2)
    assert run["counts"] == {"passed": 3, "failed": 2} and run["argv"] == ["tests", "-x"]
    assert client.get("/runs/last").json()["run_id"] == "live"  # newer than every stored run
    assert [r["run_id"] for r in client.get("/runs").json()["items"]] == ["live", *(read_service.data.run,
                                                                                     read_service.data.base)]
    items, count = pages(client, "/runs/live/results", limit=2)
    assert [i["nodeid"] for i in items] == [f"t.py::test_{i}" for i in range(5)] and count == 3
    assert items[1]["longrepr"] == "Traceback..." and items[1]["seq"] is not None
    failed, _ = pages(client, "/runs/live/results", outcome="failed", worker="w1")
    assert [i["nodeid"] for i in failed] == ["t.py::test_1", "t.py::test_3"]
    for what in ("coverage", "analysis", "diff"):  # these need the merged rows
        response = client.get(f"/runs/live/{what}")
        assert response.status_code == 409 and response.json()["error"]["place"] == "run_id"


def test_a_live_cursor_still_pages_after_the_run_is_merged(read_service: ReadService) -> None:
    from datetime import UTC, datetime

    from testfleet.model import Run, RunStatus

    hub, client = read_service.state.hub, read_service.client
    hub.publish({"run_id": "merging", "kind": "run", "t": 1_800_000_000.0, "status": "running"})
    for i in range(4):
        _live_result(hub, "merging", i, "passed", "w0")
    first = client.get("/runs/merging/results", params={"limit": 2}).json()
    with read_service.state.write_lock:  # the run's merge: now the store has it
        read_service.state.store.begin_run(Run(run_id="merging", status=RunStatus.finished,
                                               started_at=datetime(2027, 1, 1, tzinfo=UTC)))
    assert client.get("/runs/merging").json()["live"] is False
    rest = client.get("/runs/merging/results", params={"limit": 2, "cursor": first["next"]}).json()
    assert [i["nodeid"] for i in first["items"] + rest["items"]] == [f"t.py::test_{i}" for i in range(4)]
    assert rest["next"] is None
    assert client.get("/runs/merging/results").json()["items"] == []  # its stored rows: none merged here


# -- end to end ------------------------------------------------------------------------------

@pytest.fixture
def uvicorn_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``testfleet run`` of a small suite, then the read API over its store under uvicorn
    on 127.0.0.1; yields the base URL and the store's path."""
    from execution.conftest import make_suite, run_testfleet

    suite = make_suite(tmp_path / "suite", {"test_a.py": """
        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_n(n):
            assert n % 5 != 3

        def test_skip():
            pytest.skip("not here")
    """})
    ran = run_testfleet(suite, "--", "-p", "no:randomly", workers=2)
    assert ran.returncode == 1, ran.log
    assert ran.store is not None
    store = Store.open(ran.store)
    app = read_app(ServiceState(store=store, hub=EventHub(), workdir=tmp_path / "work"))
    try:
        with served_on_loopback(app) as url:
            yield url, ran.store
    finally:
        store.close()


def test_a_real_run_read_over_http(uvicorn_server: tuple[str, Path]) -> None:
    url, _ = uvicorn_server
    with httpx.Client(base_url=url, timeout=30) as client:
        run = client.get("/runs/last").json()
        assert run["counts"] == {"passed": 10, "failed": 2, "skipped": 1}
        items, _ = pages(client, f"/runs/{run['run_id']}/results", limit=5)
        assert len(items) == 13
        worker = items[0]["worker"]
        mine, _ = pages(client, "/runs/last/results", worker=worker)
        assert [i["nodeid"] for i in mine] == [i["nodeid"] for i in items if i["worker"] == worker]
        failed, _ = pages(client, "/runs/last/results", outcome="failed")
        assert sorted(i["nodeid"] for i in failed) == ["test_a.py::test_n[3]", "test_a.py::test_n[8]"]
        assert all("assert" in i["longrepr"] for i in failed)
        missing = client.get("/runs/0000/results")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
        assert client.get("/openapi.json").json()["paths"]["/runs/{run_id}/results"]["get"]
