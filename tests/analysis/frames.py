"""Analysis frames built from plain dicts, for the analysis tests (testfleet builds its frames
from the store: :mod:`testfleet.analysis.dataset`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from testfleet.analysis.frame import AnalysisFrame, categorical, infer_column

__all__ = ["frame_from_rows"]


def frame_from_rows(rows: Sequence[Mapping[str, Any]], *, env: Sequence[str] = ("worker",),
                    outcomes: Sequence[str] = ("duration",)) -> AnalysisFrame:
    """A frame from plain dicts ``{"failed": bool, "params": {...}, "worker": ..., "duration":
    ..., "variant_id": ..., "origin": ...}``: synthetic test data (origin "baseline" when not
    given; variant: the parameters when not given)."""
    names: list[str] = []
    for row in rows:
        for key in row.get("params", {}):
            if key not in names:
                names.append(key)
    columns = [infer_column(n, [r.get("params", {}).get(n) for r in rows]) for n in names]
    columns += [categorical(e, [r.get(e) for r in rows], source="env") for e in env
                if any(e in r for r in rows)]
    return AnalysisFrame(
        failed=np.array([bool(r["failed"]) for r in rows], dtype=bool), columns=columns,
        outcomes={o: np.array([float(r.get(o, np.nan)) if r.get(o) is not None else np.nan
                               for r in rows]) for o in outcomes if any(o in r for r in rows)},
        # rows with the same parameters are one variant unless told otherwise
        variant_ids=np.array([r.get("variant_id") or repr(sorted(r.get("params", {}).items()))
                              for r in rows], dtype=object),
        params=[dict(r.get("params", {})) for r in rows],
        origins=np.array([r.get("origin", "baseline") for r in rows], dtype=object))
