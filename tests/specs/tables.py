"""Spec result tables built from plain dicts, for the spec tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from testfleet.specs.check import ResultTable

__all__ = ["table_from_rows"]


def table_from_rows(rows: Sequence[Mapping[str, Any]]) -> ResultTable:
    """A table from plain dicts (nodeid, params, outcome, duration, message, markers,
    variant_id, metrics), for the spec tests (testfleet reads its tables from the store)."""
    index: dict[str, int] = {}
    params: list[Mapping[str, Any]] = []
    variant_ids: list[str] = []
    positions = []
    markers: dict[str, frozenset[str]] = {}
    for i, row in enumerate(rows):
        vid = row.get("variant_id") or f"v{i}"
        if vid not in index:
            index[vid] = len(params)
            params.append(dict(row.get("params", {})))
            variant_ids.append(vid)
        positions.append(index[vid])
        markers.setdefault(row["nodeid"], frozenset(row.get("markers", ())))

    def column(key: str, default: Any) -> np.ndarray:
        return np.array([r.get(key, default) for r in rows], dtype=object)

    return ResultTable(nodeid=column("nodeid", ""), variant=np.array(positions, dtype=np.int64),
                       outcome=column("outcome", ""),
                       duration=np.array([float(r.get("duration", 0.0)) for r in rows]),
                       message=column("message", ""), variant_ids=variant_ids, params=params,
                       markers=markers,
                       metrics=[dict(r.get("metrics", {})) for r in rows]
                       if any("metrics" in r for r in rows) else None)
