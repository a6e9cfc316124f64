"""The store side of ``testfleet spec check``: a run's executions as a ResultTable (bulk column
reads, each variant's parameters parsed once), and the history of every spec version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from testfleet.specs.check import ResultTable
from testfleet.specs.language import Spec, SpecError
from testfleet.store.db import Store


def load_results(store: Store, run_id: str) -> ResultTable:
    """Final results of a run (one per execution, reruns folded in), as columns."""
    cols = store.fetch_numpy(
        "SELECT r.nodeid, r.variant_id, r.outcome, r.duration, r.message "
        "FROM results r WHERE r.run_id = $1 AND r.final ORDER BY r.rowid", [run_id])
    variant_ids, inverse = np.unique(np.asarray(cols["variant_id"], dtype=object).astype(str),
                                     return_inverse=True)
    params_of = store.variant_params(variant_ids.tolist())
    markers: dict[str, frozenset[str]] = {}
    for nodeid, raw in store.query(
            "SELECT nodeid, any_value(keywords) FROM results WHERE run_id = $1 GROUP BY nodeid",
            [run_id]):
        words = json.loads(raw) if isinstance(raw, str) else (raw or [])
        markers[nodeid] = frozenset(str(w) for w in words)
    return ResultTable(
        nodeid=np.asarray(cols["nodeid"], dtype=object),
        variant=inverse.reshape(-1).astype(np.int64),
        outcome=np.asarray(cols["outcome"], dtype=object),
        duration=np.asarray(cols["duration"], dtype=float),
        message=np.asarray(cols["message"], dtype=object),
        variant_ids=[str(v) for v in variant_ids],
        params=[params_of.get(str(v), {}) for v in variant_ids],
        markers=markers)


def record_versions(store: Store, specs: Sequence[Spec]) -> list[str]:
    """Keep every (id, version) the store has not seen; refuse a spec whose text changed under a
    version already recorded. Returns the refs newly recorded."""
    known = {(sid, ver): digest for sid, ver, digest in store.query(
        "SELECT spec_id, version, digest FROM specs")}
    new = []
    for spec in specs:
        seen = known.get((spec.id, spec.version))
        if seen is not None and seen != spec.digest:
            raise SpecError(f"spec {spec.id} version {spec.version} differs from the version "
                            "recorded when it was first checked", source=spec.source,
                            place=spec.id, expected="a new version number for a changed spec")
        if seen is None:
            new.append(spec)
    if new:
        now = datetime.now(UTC)
        store.write("record spec versions", [(
            "INSERT INTO specs VALUES ($1, $2, $3, $4, $5, $6)",
            [s.id, s.version, json.dumps(s.body, default=str), s.digest, s.source, now])
            for s in new])
    return [s.ref for s in new]


def versions(store: Store, spec_id: str) -> list[tuple[str, datetime, dict[str, Any]]]:
    """Every recorded version of a spec, oldest first."""
    # epoch seconds: fetching TIMESTAMPTZ would need pytz in duckdb's Python client
    return [(ver, datetime.fromtimestamp(seen, UTC), json.loads(body) if isinstance(body, str)
             else body)
            for ver, seen, body in store.query(
                "SELECT version, epoch(first_seen), body FROM specs WHERE spec_id = $1 "
                "ORDER BY first_seen", [spec_id])]
