"""The read side of the REST API: runs, results, telemetry, coverage, analysis, diffs, snapshots
and specs, as JSON, from the store the server owns (each request on its own cursor of it).

A run the hub knows but the store has not got yet (queued, running, or not merged) is answered
from its events (:mod:`testfleet.service.api_live`); what needs the stored rows (coverage,
analysis, diff) answers 409 until the run is merged. Lists are keyset pages
(:mod:`testfleet.service.api_cursor`): ``{"items": [...], "next": cursor|null}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from testfleet.errors import StoreError, TestfleetError
from testfleet.model import Outcome, Run
from testfleet.service import api_live, api_queries
from testfleet.service.api_cursor import decode_cursor, encode_cursor
from testfleet.service.api_models import (
    CaseCoverageOut,
    AnalysisOut,
    CoverageOut,
    DiffEntry,
    OriginCount,
    Page,
    ResultOut,
    RunDiffOut,
    RunOut,
    SeriesPoint,
    SnapshotOut,
    SpecOut,
)
from testfleet.service.errors import ApiError, ErrorResponse
from testfleet.service.state import ServiceState, service_of
from testfleet.store.db import Store

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A bad cursor or parameter."},
    404: {"model": ErrorResponse, "description": "No such run."},
    422: {"model": ErrorResponse, "description": "A parameter of the wrong type or out of range."}}
_STORED_ONLY: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 409: {"model": ErrorResponse, "description": "The run is live: not in the store yet."}}

router = APIRouter(tags=["read"], responses=_ERRORS)

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Query(description="The `next` of the previous page.")]
RunRef = Annotated[str, PathParam(description="A run id, a unique prefix of one, or 'last' (the newest run).",
                                  examples=["last"])]


def _page(rows: list[tuple[list[Any], Any]], limit: int, kind: str) -> tuple[list[Any], str | None]:
    """The items of a page fetched with ``limit + 1`` rows, and the cursor of the next page."""
    items = [item for _, item in rows[:limit]]
    more = len(rows) > limit
    return items, encode_cursor(kind, rows[limit - 1][0]) if more else None


def _run_out(run: Run) -> RunOut:
    return RunOut.model_validate({**run.model_dump(), "live": False, "status": run.status.value})


def _resolve(state: ServiceState, db: Store, ref: str) -> Run | str:
    """The stored run ``ref`` names, or the id of a live run (one the store has not got)."""
    hub = state.hub
    if ref == "last":
        live = api_live.live_run_ids(hub)
        stored_ids = api_queries.run_ids_in_store(db, list(live))
        unstored = {rid: t for rid, t in live.items() if rid not in stored_ids}
        newest = max(unstored.items(), key=lambda item: (item[1], item[0]), default=None)
        stored = api_queries.run_page(db, 1, None)
        if newest and (not stored or newest[1] * 1e6 >= stored[0][0][0]):
            return newest[0]
    elif hub.knows(ref) and not api_queries.run_ids_in_store(db, [ref]):
        return ref
    try:
        return db.get_run(ref)
    except StoreError as exc:  # get_run's "no run ..." is a 404, an ambiguous prefix a 400
        if not exc.message.startswith(("no run", "run prefix")):
            raise  # the store itself failed: the JSON error of every TestfleetError
        status = 404 if exc.message.startswith("no run") else 400
        raise ApiError(status, exc.message, source="request", place="run_id",
                       expected=exc.expected) from None


def _live_cursor(state: ServiceState, run_id: str, after: tuple[str, list[Any]] | None, kind: str) -> None:
    """Refuse a live list's cursor of a run the hub does not know, and a stored list's cursor of
    a live run."""
    if not state.hub.knows(run_id):
        raise ApiError(404, f"no live run {run_id!r}", source="request", place="run_id")
    if after is not None and after[0] != kind:
        raise ApiError(400, "bad cursor: the run is live, the cursor is of a stored list",
                       source="request", place="cursor", expected="a cursor of this run's live list")


def _stored(state: ServiceState, db: Store, ref: str) -> Run:
    found = _resolve(state, db, ref)
    if isinstance(found, str):
        raise ApiError(409, f"run {found} is live: this answer needs its results in the store, "
                            "which the server merges when the run ends", source="request",
                       place="run_id", expected="a finished run")
    return found


@router.get("/runs", response_model=Page[RunOut], summary="Runs, newest first (live ones included)")
def list_runs(request: Request, limit: Limit = 100, cursor: Cursor = None) -> Page[RunOut]:
    state = service_of(request)
    before = decode_cursor(cursor, {"run": (int, str)})[1] if cursor else None
    with state.reader() as db:
        rows: list[tuple[list[Any], RunOut]] = [
            (key, _run_out(run)) for key, run in api_queries.run_page(db, limit + 1, before)]
        live = api_live.live_run_ids(state.hub)
        stored = api_queries.run_ids_in_store(db, list(live))
    for run_id, t in live.items():  # live runs sort by their first event's time
        key = [int(t * 1e6), run_id]
        if run_id not in stored and (before is None or key < before):
            rows.append((key, api_live.live_run(state.hub, run_id)))
    rows.sort(key=lambda row: row[0], reverse=True)
    items, next_cursor = _page(rows[:limit + 1], limit, "run")
    return Page[RunOut](items=items, next=next_cursor)


@router.get("/runs/{run_id}", response_model=RunOut, summary="One run ('last': the newest)")
def get_run(request: Request, run_id: RunRef) -> RunOut:
    state = service_of(request)
    with state.reader() as db:
        found = _resolve(state, db, run_id)
    return api_live.live_run(state.hub, found) if isinstance(found, str) else _run_out(found)


@router.get("/runs/{run_id}/results", response_model=Page[ResultOut],
            summary="A run's results (every attempt), in the order they finished")
def list_results(
    request: Request, run_id: RunRef,
    outcome: Annotated[list[Outcome] | None, Query(description="Keep these outcomes (repeat it).")] = None,
    case: Annotated[str | None, Query(description="A test's nodeid or case id.")] = None,
    worker: Annotated[str | None, Query(description="Results of this worker.")] = None,
    final: Annotated[bool | None, Query(description="true: final attempts only; false: retried ones.")] = None,
    limit: Limit = 100, cursor: Cursor = None,
) -> Page[ResultOut]:
    state = service_of(request)
    filters = api_queries.ResultFilters([o.value for o in outcome or ()], case, worker, final)
    after = decode_cursor(cursor, {"result": (int, str, int, int), "live-result": (int,)}) if cursor else None
    with state.reader() as db:
        # a live run's cursor stays live: the hub keeps its events after the merge
        found = run_id if after and after[0] == "live-result" else _resolve(state, db, run_id)
        if isinstance(found, str):
            _live_cursor(state, found, after, "live-result")
            rows = api_live.live_results(state.hub, found, filters, limit + 1,
                                         after[1][0] if after else None)
            items, next_cursor = _page(rows, limit, "live-result")
            return Page[ResultOut](items=items, next=next_cursor)
        page = api_queries.result_page(db, found.run_id, filters, limit + 1, after[1] if after else None)
        facts = api_queries.variant_facts(db, [r.variant_id for _, r in page[:limit]])
    out = []
    for key, result in page:
        origin, params = facts.get(result.variant_id, (None, None))
        out.append((key, ResultOut.model_validate(
            {**result.model_dump(), "outcome": result.outcome.value, "origin": origin, "params": params})))
    items, next_cursor = _page(out, limit, "result")
    return Page[ResultOut](items=items, next=next_cursor)


@router.get("/runs/{run_id}/telemetry", response_model=Page[SeriesPoint],
            summary="A run's telemetry samples, in time order")
def list_telemetry(
    request: Request, run_id: RunRef,
    metric: Annotated[str | None, Query(description="A metric name or glob (cpu*).")] = None,
    worker: Annotated[str | None, Query(description="Samples of this worker.")] = None,
    limit: Limit = 100, cursor: Cursor = None,
) -> Page[SeriesPoint]:
    state = service_of(request)
    after = decode_cursor(cursor, {"series": (float, int), "live-series": (int, int)}) if cursor else None
    with state.reader() as db:
        found = run_id if after and after[0] == "live-series" else _resolve(state, db, run_id)
        if isinstance(found, str):
            _live_cursor(state, found, after, "live-series")
            rows: list[tuple[list[Any], Any]] = api_live.live_series(
                state.hub, found, metric, worker, limit + 1, after[1] if after else None)
            kind = "live-series"
        else:
            rows = api_queries.series_page(db, found.run_id, metric, worker, limit + 1,
                                           after[1] if after else None)
            kind = "series"
    points = [(key, SeriesPoint(worker=w, t=t, metric=m, value=api_queries.finite(v)))
              for key, (w, t, m, v) in rows]
    items, next_cursor = _page(points, limit, kind)
    return Page[SeriesPoint](items=items, next=next_cursor)


def _space_file(run: Run, space: str) -> Path:
    """The space file ``space`` names, inside the run's root directory (never outside it)."""
    root = Path(run.rootdir).resolve() if run.rootdir else None
    if root is None or not root.is_dir():
        raise ApiError(400, f"run {run.run_id}'s root directory is not on this server", source="request",
                       place="space", expected="a run this server ran, whose project is still here")
    path = (root / space).resolve()
    if Path(space).is_absolute() or not path.is_relative_to(root):
        raise ApiError(400, "the space file must lie inside the run's root directory", source="request",
                       place="space", expected="a path relative to the run's root directory")
    return path


@router.get("/runs/{run_id}/coverage", response_model=CoverageOut, responses=_STORED_ONLY,
            summary="Executions by variant source; with ?space=, t-way coverage of that space")
def get_coverage(
    request: Request, run_id: RunRef,
    space: Annotated[str | None, Query(description="A space file (or JSON Schema, or example config) "
                                                   "relative to the run's root directory.")] = None,
    strength: Annotated[int, Query(ge=1, le=6, description="t of the t-way measures.")] = 2,
    gaps: Annotated[int, Query(ge=0, le=10_000, description="How many missing tuples to list.")] = 100,
) -> CoverageOut:
    state = service_of(request)
    with state.reader() as db:
        run = _stored(state, db, run_id)
        by_origin = [OriginCount(**row) for row in api_queries.origin_counts(db, run.run_id)]
        if space is None:
            return CoverageOut(run_id=run.run_id, by_origin=by_origin,
                               cases=_recorded_coverage(db, run.run_id, strength, gaps))
        from testfleet.analysis.space_coverage import measure_points, points_of_run
        from testfleet.configs.fuzz import load_input
        from testfleet.jsonable import jsonable

        source = load_input(_space_file(run, space))
        points, failed = points_of_run(db, run.run_id, source.space)
    result = measure_points(source.space, points, strength, failed=failed)
    # what `testfleet space coverage --json` writes, and what its heatmaps draw: the pairwise
    # matrix over the space's names and the value-pair details
    data = {**result.to_dict(gap_limit=gaps), "names": list(source.space.names),
            "matrix": result.matrix.tolist(), "pair_details": result.pair_details()}
    return CoverageOut(run_id=run.run_id, by_origin=by_origin, space=space, coverage=jsonable(data))


def _recorded_coverage(db: Store, run_id: str, strength: int, gaps: int) -> list[CaseCoverageOut]:
    from testfleet.analysis.space_coverage import case_coverage, recorded_spaces
    from testfleet.jsonable import jsonable

    out = []
    for recorded in recorded_spaces(db, run_id):
        try:
            space, result = case_coverage(db, run_id, str(recorded["case_id"]), recorded["space"], strength)
        except TestfleetError:  # a space this testfleet cannot rebuild: left out, not a 500
            continue
        data = {**result.to_dict(gap_limit=gaps), "names": list(space.names),
                "matrix": result.matrix.tolist(), "pair_details": result.pair_details()}
        out.append(CaseCoverageOut(case_id=str(recorded["case_id"]), nodeid=recorded.get("nodeid"),
                                   coverage=jsonable(data)))
    return out


@router.get("/runs/{run_id}/analysis", response_model=AnalysisOut, responses=_STORED_ONLY,
            summary="`testfleet analyze --json`: parameter impact, interactions, failure clusters, flaky tests")
def get_analysis(
    request: Request, run_id: RunRef,
    runs: Annotated[int, Query(ge=1, le=1000, description="Analyse this run and the N-1 before it.")] = 1,
    fdr: Annotated[float, Query(gt=0, lt=1, description="False discovery rate (Benjamini-Hochberg).")] = 0.05,
    next: Annotated[int, Query(ge=0, le=1000, description="Propose this many follow-up variants.")] = 0,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="Seed of the randomised tests.")] = 0,
) -> AnalysisOut:
    from testfleet.analysis.correlation import analyze, next_variants
    from testfleet.analysis.dataset import (
        choose_runs,
        explained_by_replays,
        load_frame,
        load_rows,
        replication_verdicts,
    )
    from testfleet.analysis.failures import cluster_failures
    from testfleet.analysis.flaky import flaky_tests
    from testfleet.reporting.analysis_report import to_json
    from testfleet.jsonable import jsonable

    state = service_of(request)
    with state.reader() as db:  # what `testfleet analyze` gathers, on this request's cursor
        run = _stored(state, db, run_id)
        chosen = choose_runs(db, run.run_id, runs)
        frame = load_frame(db, chosen)
        rows = load_rows(db, chosen)
        replicated = replication_verdicts(db, chosen)
    analysis = analyze(frame, fdr=fdr, seed=seed)
    proposals = next_variants(frame, analysis, count=next, seed=seed) if next else []
    explained = explained_by_replays(replicated)
    data = to_json({"runs": [r.run_id for r in chosen], "analysis": analysis,
                    "clusters": cluster_failures(rows),
                    "flaky": [f for f in flaky_tests(rows) if f.variant_id not in explained],
                    "next": proposals, "next_asked": bool(next), "confirmed": [], "replication": replicated})
    return AnalysisOut.model_validate(jsonable(data))


@router.get("/runs/{run_id}/diff", response_model=RunDiffOut, responses=_STORED_ONLY,
            summary="What changed since a base run: new failures, fixed tests, slower tests")
def get_diff(
    request: Request, run_id: RunRef,
    base: Annotated[str | None, Query(description="The base run (id, prefix or 'last'); "
                                                  "default: the run before this one.")] = None,
    min_ratio: Annotated[float, Query(ge=1, le=1e6, description="Slower: at least this many times.")] = 1.5,
    min_delta: Annotated[float, Query(ge=0, le=1e6, description="Slower: by at least this many seconds.")] = 0.05,
) -> RunDiffOut:
    state = service_of(request)
    with state.reader() as db:
        run = _stored(state, db, run_id)
        if base is None:
            base_id = api_queries.runs_before(db, run)
            if base_id is None:
                raise ApiError(400, f"run {run.run_id} is the first run in the store: nothing to diff against",
                               source="request", place="base", expected="?base=RUN")
        else:
            try:
                base_id = _stored(state, db, base).run_id
            except ApiError as exc:
                exc.body.place = "base"
                raise
        changes = api_queries.diff_runs(db, run.run_id, base_id, min_ratio, min_delta)
    return RunDiffOut(run_id=run.run_id, base=base_id,
                      **{name: [DiffEntry(**e) for e in entries] for name, entries in changes.items()})


@router.get("/snapshots", response_model=Page[SnapshotOut], summary="Configuration snapshots, newest first")
def list_snapshots(request: Request, limit: Limit = 100, cursor: Cursor = None) -> Page[SnapshotOut]:
    from testfleet.snapshots.store import SnapshotStore

    after = decode_cursor(cursor, {"snapshot": (int, str)})[1] if cursor else None
    with service_of(request).reader() as db:
        rows = api_queries.snapshot_ids_page(db, limit + 1, after)
        # the page's ids by keyset, their details by the snapshot store's own listing
        infos = {info.snapshot_id: info for info in SnapshotStore(db).list(ids=[sid for _, sid in rows[:limit]])}
    items = [SnapshotOut(snapshot_id=info.snapshot_id, created_at=info.created_at, roots=info.roots,
                         files=info.files, size=info.size, tags=list(info.tags), meta=info.meta)
             for info in (infos.get(sid) for _, sid in rows[:limit]) if info is not None]
    next_cursor = encode_cursor("snapshot", rows[limit - 1][0]) if len(rows) > limit else None
    return Page[SnapshotOut](items=items, next=next_cursor)


@router.get("/specs", response_model=Page[SpecOut], summary="Every recorded version of every behaviour spec")
def list_specs(
    request: Request,
    spec_id: Annotated[str | None, Query(description="Versions of this spec only.")] = None,
    limit: Limit = 100, cursor: Cursor = None,
) -> Page[SpecOut]:
    after = decode_cursor(cursor, {"spec": (str, int, str)})[1] if cursor else None
    with service_of(request).reader() as db:
        rows = api_queries.spec_page(db, limit + 1, after, spec_id)
    items, next_cursor = _page([(key, SpecOut(**row)) for key, row in rows], limit, "spec")
    return Page[SpecOut](items=items, next=next_cursor)
