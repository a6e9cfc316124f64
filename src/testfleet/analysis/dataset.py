"""Loading what ``testfleet analyze`` and ``testfleet flaky`` work on, from the store.

One bulk read per table (DuckDB to numpy), each variant's parameters parsed once:

- :func:`load_frame`: the final executions of the chosen runs that passed or failed (skips and
  xfails say nothing about failure) as an :class:`AnalysisFrame` — one column per variant
  parameter, plus the environment: worker, run, and the host, Python and OS each run recorded;
  with each execution's variant id and origin (why the variant ran: baseline, random, mutation,
  replay...), which separate design from guided executions and give the environment its strata;
- :func:`load_rows`: every execution with its message and traceback, for failure clusters and
  flakiness (passing ones too: they say which workers ran a test without failing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from testfleet.analysis.frame import AnalysisFrame, categorical, infer_column
from testfleet.model import FAILURE_OUTCOMES, Run
from testfleet.store.db import Store

_DECIDED = sorted({"passed", "xpassed", *FAILURE_OUTCOMES})
ENVIRONMENT = ("host", "python", "os")


def choose_runs(store: Store, ref: str, count: int) -> list[Run]:
    """The run named by ``ref`` and the ``count - 1`` runs before it."""
    anchor = store.get_run(ref)
    if count <= 1:
        return [anchor]
    earlier = [r for r in store.list_runs(10_000) if r.started_at <= anchor.started_at]
    return earlier[:count]


def load_frame(store: Store, runs: Sequence[Run]) -> AnalysisFrame:
    ids = [r.run_id for r in runs]
    cols = store.fetch_numpy(
        "SELECT run_id, variant_id, worker, outcome, duration FROM results "
        "WHERE run_id IN (SELECT unnest($1::VARCHAR[])) AND final "
        "AND outcome IN (SELECT unnest($2::VARCHAR[])) ORDER BY rowid", [ids, _DECIDED])
    variant_ids = np.asarray(cols["variant_id"], dtype=object)
    distinct, inverse = np.unique(variant_ids.astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    params_of = store.variant_params(distinct.tolist())
    per_variant = [params_of.get(str(v), {}) for v in distinct]
    names: list[str] = []
    for params in per_variant:
        names += [k for k in params if k not in names]
    columns = []
    for name in names:
        values = np.empty(len(distinct), dtype=object)
        values[:] = [p.get(name) for p in per_variant]
        column = infer_column(name, values.tolist())
        column.values = column.values[inverse]  # per variant -> per execution
        columns.append(column)
    run_of = np.asarray(cols["run_id"], dtype=object)
    columns.append(categorical("worker", np.asarray(cols["worker"], dtype=object), "env"))
    if len(runs) > 1:
        columns.append(categorical("run", run_of, "env"))
    environment = {r.run_id: (r.settings or {}).get("environment", {}) for r in runs}
    for key in ENVIRONMENT:
        by_run = {rid: env.get(key) for rid, env in environment.items()}
        if any(v is not None for v in by_run.values()):
            columns.append(categorical(key, [by_run.get(r) for r in run_of], "env"))
    outcome = np.asarray(cols["outcome"], dtype=object).astype(str)
    return AnalysisFrame(
        failed=np.isin(outcome, sorted(FAILURE_OUTCOMES)), columns=columns,
        outcomes={"duration": np.asarray(cols["duration"], dtype=float)},
        variant_ids=variant_ids, params=[per_variant[i] for i in inverse],
        origins=_origins(store, ids, run_of, variant_ids))


def _origins(store: Store, run_ids: list[str], run_of: np.ndarray, variant_ids: np.ndarray
             ) -> np.ndarray:
    """Why each execution's variant ran (``baseline``, ``random``, ``mutation``, ...): the
    explorer's ``variant`` event of that run when there is one (a variant first drawn at random
    and later replayed because it failed was guided the second time), else the origin the
    variant was first stored with."""
    stored = dict(store.query(
        "SELECT variant_id, origin FROM variants "
        "WHERE variant_id IN (SELECT unnest($1::VARCHAR[]))",
        [sorted({str(v) for v in variant_ids.tolist()})]))
    per_run = {(run, vid): origin for run, vid, origin in store.query(
        "SELECT run_id, variant_id, any_value(data->>'origin') FROM events "
        "WHERE kind = 'variant' AND run_id IN (SELECT unnest($1::VARCHAR[])) "
        "AND variant_id IS NOT NULL GROUP BY run_id, variant_id", [run_ids])}
    out = np.empty(len(variant_ids), dtype=object)
    out[:] = [per_run.get((str(r), str(v))) or stored.get(str(v)) or "baseline"
              for r, v in zip(run_of.tolist(), variant_ids.tolist())]
    return out


def load_rows(store: Store, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Every execution of the runs (all attempts), with run facts, as dicts."""
    sha = {r.run_id: r.git_sha for r in runs}
    rows = store.query(
        "SELECT run_id, variant_id, nodeid, attempt, worker, outcome, message, longrepr, "
        "epoch(finished_at), final, flaky FROM results "
        "WHERE run_id IN (SELECT unnest($1::VARCHAR[])) ORDER BY finished_at NULLS LAST, rowid",
        [list(sha)])
    from datetime import UTC, datetime

    keys = ("run_id", "variant_id", "nodeid", "attempt", "worker", "outcome", "message",
            "longrepr", "finished_at", "final", "flaky")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        stamp = item["finished_at"]
        item["finished_at"] = datetime.fromtimestamp(stamp, UTC) if stamp is not None else None
        item["git_sha"] = sha[item["run_id"]]
        out.append(item)
    return out


def replication_verdicts(db: Store, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The ``replication`` events of ``runs``: what replaying each failure at once concluded."""
    from testfleet.store.telemetry import TelemetryStore

    return [e for run in runs for e in TelemetryStore(db).events(run.run_id, kinds=("replication",))]


def explained_by_replays(verdicts: list[dict[str, Any]]) -> set[str]:
    """Variants whose replays found the cause (a worker, a config): they failed and passed for
    that reason, so they are not flaky."""
    return {str(e["variant_id"]) for e in verdicts if e.get("class") != "flaky"}
