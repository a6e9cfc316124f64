"""The read API's queries over the store: keyset pages of runs, results, telemetry, snapshots
and specs, a run's executions by variant source, and the diff of two runs.

Rows are read and decoded by the store's own column lists and decoders (``store.db``), so a page
of runs or results is the same :class:`~testfleet.model.Run` / ``Result`` the CLI reads; only the
keyset conditions are new here. Each page asks for ``limit + 1`` rows: the extra one says whether
there is a next page without a count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from testfleet.model import FAILURE_OUTCOMES, Result, Run
from testfleet.store.db import _RESULT_COLS, _RUN_COLS, Store, _rows, _select_list
from testfleet.store.liveness import settle

__all__ = ["NO_TIME", "ResultFilters", "diff_runs", "origin_counts", "result_page", "run_page",
           "run_ids_in_store", "runs_before", "series_page", "snapshot_ids_page", "spec_page",
           "variant_facts"]

NO_TIME = 2**63 - 1
"""The sort key of a result with no finish time: after every real one (the store's NULLS LAST)."""
_FAILED = sorted(o.value for o in FAILURE_OUTCOMES)


def finite(value: Any) -> float | None:
    """A float for JSON: NaN and infinities have no JSON spelling, so they are null."""
    return float(value) if value is not None and math.isfinite(value) else None


def run_page(store: Store, limit: int, before: list[Any] | None) -> list[tuple[list[Any], Run]]:
    """Up to ``limit`` runs, newest first, each with its key (started_at in µs, run id), after the
    key ``before`` (exclusive). A run whose coordinator died reads as interrupted."""
    params: list[Any] = [limit]
    where = ""
    if before is not None:
        where = "WHERE (epoch_us(started_at), run_id) < ($2, $3)"
        params += before
    rows = store.query(f"SELECT epoch_us(started_at), {_select_list(_RUN_COLS)} FROM runs {where} "
                       "ORDER BY started_at DESC, run_id DESC LIMIT $1", params)
    runs = settle(store, _rows(Run, _RUN_COLS, [row[1:] for row in rows]))
    return [([int(row[0]), run.run_id], run) for row, run in zip(rows, runs, strict=True)]


def run_ids_in_store(store: Store, run_ids: Sequence[str]) -> set[str]:
    rows = store.query("SELECT run_id FROM runs WHERE run_id IN (SELECT unnest($1::VARCHAR[]))",
                       [list(run_ids)])
    return {row[0] for row in rows}


def runs_before(store: Store, run: Run) -> str | None:
    """The id of the newest run that started before ``run`` (the default base of a diff)."""
    rows = store.query("SELECT run_id FROM runs WHERE (started_at, run_id) < ("
                       "SELECT (started_at, run_id) FROM runs WHERE run_id = $1) "
                       "ORDER BY started_at DESC, run_id DESC LIMIT 1", [run.run_id])
    return str(rows[0][0]) if rows else None


class ResultFilters:
    """The ``?outcome=&case=&worker=&final=`` of a results list (None: no condition)."""

    def __init__(self, outcome: Sequence[str] | None = None, case: str | None = None,
                 worker: str | None = None, final: bool | None = None) -> None:
        self.outcome = list(outcome) if outcome else None
        self.case = case
        self.worker = worker
        self.final = final

    def sql(self, params: list[Any]) -> str:
        """The SQL conditions (``AND ...``), appending their parameters to ``params``."""
        parts = []
        if self.outcome is not None:
            params.append(self.outcome)
            parts.append(f"list_contains(${len(params)}, outcome)")
        if self.case is not None:
            params.append(self.case)
            parts.append(f"(nodeid = ${len(params)} OR case_id = ${len(params)})")
        if self.worker is not None:
            params.append(self.worker)
            parts.append(f"worker = ${len(params)}")
        if self.final is not None:
            parts.append("final" if self.final else "NOT final")
        return "".join(f" AND {part}" for part in parts)

    def keeps(self, event: dict[str, Any]) -> bool:
        """The same conditions on a live ``result`` event (which has no case id: nodeid only)."""
        return ((self.outcome is None or event.get("outcome") in self.outcome)
                and (self.case is None or event.get("nodeid") == self.case)
                and (self.worker is None or event.get("worker") == self.worker)
                and (self.final is None or bool(event.get("final")) == self.final))


def result_page(store: Store, run_id: str, filters: ResultFilters, limit: int,
                after: list[Any] | None) -> list[tuple[list[Any], Result]]:
    """Up to ``limit`` results of a run in the store's order (finished_at, unknown last; nodeid;
    attempt; row), each with its key, after the key ``after`` (exclusive)."""
    params: list[Any] = [run_id, limit]
    key = f"coalesce(epoch_us(finished_at), {NO_TIME})"
    where = filters.sql(params)
    if after is not None:
        params += after
        n = len(params)
        where += f" AND ({key}, nodeid, attempt, rowid) > (${n - 3}, ${n - 2}, ${n - 1}, ${n})"
    rows = store.query(
        f"SELECT {key}, rowid, {_select_list(_RESULT_COLS)} FROM results "
        f"WHERE run_id = $1{where} ORDER BY {key}, nodeid, attempt, rowid LIMIT $2", params)
    results = _rows(Result, _RESULT_COLS, [row[2:] for row in rows])
    return [([int(row[0]), r.nodeid, r.attempt, int(row[1])], r)
            for row, r in zip(rows, results, strict=True)]


def variant_facts(store: Store, variant_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """(origin, params) of each stored variant among ``variant_ids``."""
    rows = store.query("SELECT variant_id, origin, params::VARCHAR FROM variants "
                       "WHERE variant_id IN (SELECT unnest($1::VARCHAR[]))", [sorted(set(variant_ids))])
    return {vid: (origin, json.loads(params) if params else {}) for vid, origin, params in rows}


def series_page(store: Store, run_id: str, metric: str | None, worker: str | None, limit: int,
                after: list[Any] | None) -> list[tuple[list[Any], tuple[str, float, str, float]]]:
    """Up to ``limit`` telemetry samples of a run in time order, each with its key (t, row).
    ``metric`` is a glob, as ``testfleet telemetry --metric`` takes."""
    params: list[Any] = [run_id, limit]
    where = ""
    if metric is not None:
        params.append(metric)
        where += f" AND metric GLOB ${len(params)}"
    if worker is not None:
        params.append(worker)
        where += f" AND worker = ${len(params)}"
    if after is not None:
        params += after
        where += f" AND (t, rowid) > (${len(params) - 1}, ${len(params)})"
    rows = store.query(f"SELECT t, rowid, worker, metric, value FROM telemetry WHERE run_id = $1{where} "
                       "ORDER BY t, rowid LIMIT $2", params)
    return [([float(t), int(rid)], (str(w), float(t), str(m), float(v))) for t, rid, w, m, v in rows]


def snapshot_ids_page(store: Store, limit: int, after: list[Any] | None) -> list[tuple[list[Any], str]]:
    """Up to ``limit`` snapshot ids in ``SnapshotStore.list``'s order (newest first, then id)."""
    params: list[Any] = [limit]
    where = ""
    if after is not None:
        params += after
        where = ("WHERE epoch_us(created_at) < $2 OR (epoch_us(created_at) = $2 AND snapshot_id > $3)")
    rows = store.query(f"SELECT epoch_us(created_at), snapshot_id FROM snapshots {where} "
                       "ORDER BY created_at DESC, snapshot_id LIMIT $1", params)
    return [([int(us), str(sid)], str(sid)) for us, sid in rows]


def spec_page(store: Store, limit: int, after: list[Any] | None, spec_id: str | None,
              ) -> list[tuple[list[Any], dict[str, Any]]]:
    """Up to ``limit`` recorded spec versions, by spec id then first seen, each with its key."""
    params: list[Any] = [limit]
    where = "TRUE"
    if spec_id is not None:
        params.append(spec_id)
        where += f" AND spec_id = ${len(params)}"
    if after is not None:
        params += after
        n = len(params)
        where += f" AND (spec_id, epoch_us(first_seen), version) > (${n - 2}, ${n - 1}, ${n})"
    rows = store.query("SELECT spec_id, epoch_us(first_seen), version, digest, source, body::VARCHAR "
                       f"FROM specs WHERE {where} ORDER BY spec_id, first_seen, version LIMIT $1", params)
    return [([sid, int(us), ver], {"spec_id": sid, "version": ver, "digest": digest, "source": source,
                                   "first_seen": datetime.fromtimestamp(us / 1e6, UTC),
                                   "body": json.loads(body) if body else None})
            for sid, us, ver, digest, source, body in rows]


def origin_counts(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's final executions by the source of their variant (baseline, random, rule...)."""
    rows = store.query(
        "SELECT coalesce(v.origin, 'baseline') AS o, count(DISTINCT r.variant_id), count(*), "
        "count(*) FILTER (WHERE list_contains($2, r.outcome)) "
        "FROM results r LEFT JOIN variants v USING (variant_id) WHERE r.run_id = $1 AND r.final "
        "GROUP BY o ORDER BY o", [run_id, _FAILED])
    return [{"origin": o, "variants": int(nv), "executions": int(n), "failures": int(f)}
            for o, nv, n, f in rows]


_DIFF_SIDE = (
    "SELECT variant_id, any_value(nodeid) AS nodeid, "
    "  bool_or(list_contains($3, outcome)) AS failed, bool_or(outcome = 'passed') AS passed, "
    "  arg_max(outcome, list_contains($3, outcome)) AS outcome, "
    "  arg_max(message, list_contains($3, outcome)) AS message, avg(duration) AS duration "
    "FROM results WHERE run_id = ${n} AND final GROUP BY variant_id")


def diff_runs(store: Store, run_id: str, base_id: str, min_ratio: float, min_delta: float,
              ) -> dict[str, list[dict[str, Any]]]:
    """Per variant (a test, or an explored variant of one), what changed from ``base_id`` to
    ``run_id``: new failures, fixes, and passing tests that got slower. Replicated executions
    count as failed when any failed; their duration is the mean."""
    rows = store.query(
        f"WITH a AS ({_DIFF_SIDE.format(n=1)}), b AS ({_DIFF_SIDE.format(n=2)}) "
        "SELECT a.variant_id, a.nodeid, a.outcome, b.outcome, a.duration, b.duration, a.message, "
        "  CASE WHEN a.failed AND NOT coalesce(b.failed, false) THEN 'new_failures' "
        "       WHEN b.failed AND a.passed AND NOT a.failed THEN 'fixed' "
        "       WHEN a.passed AND b.passed AND NOT a.failed AND NOT b.failed "
        "            AND a.duration >= b.duration * $4 AND a.duration - b.duration >= $5 THEN 'slower' "
        "  END AS change "
        "FROM a LEFT JOIN b USING (variant_id) WHERE change IS NOT NULL "
        "ORDER BY change, CASE WHEN change = 'slower' THEN -a.duration / greatest(b.duration, 1e-9) END, "
        "a.nodeid, a.variant_id",
        [run_id, base_id, _FAILED, min_ratio, min_delta])
    out: dict[str, list[dict[str, Any]]] = {"new_failures": [], "fixed": [], "slower": []}
    for vid, nodeid, outcome, base_outcome, duration, base_duration, message, change in rows:
        out[change].append({"variant_id": vid, "nodeid": nodeid, "outcome": outcome,
                            "base_outcome": base_outcome, "duration": finite(duration) or 0.0,
                            "base_duration": finite(base_duration), "message": message or ""})
    return out
