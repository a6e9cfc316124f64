"""Which executions a significance test may use: the design, not the guided search.

Why. A test of "failure is independent of this parameter" assumes the parameter's values were
chosen without looking at outcomes. That holds for the variants of a *design*: the baseline
(the suite as written, plain ``parametrize`` cases included), coverage rows (edges, orders,
pairwise and t-way arrays) and random points. It fails for *guided* variants, chosen because of
what earlier executions did: mutations next to a failure or an anomaly, variants a rule proposed
once its trigger held, minimisation probes, replays of past failures. They cluster around
failures, so any parameter they happen to vary looks tied to failure. Guided executions still
say where to look: what they suggest becomes a *hypothesis* (with its counts), to confirm with
``testfleet analyze --confirm``, never a significant finding.

The source is the ``origin`` a variant was stored with (an A/B arm's ``@arm`` suffix and a rule's
``:name`` are ignored). An origin not known here counts as guided: nothing unknown is trusted.
"""

from __future__ import annotations

import numpy as np

from testfleet.analysis.frame import AnalysisFrame

#: sources whose values were chosen without looking at outcomes
DESIGN_SOURCES = frozenset({"baseline", "edge", "order", "pairwise", "random"})


def source_of(origin: object) -> str:
    """``rule:cpu@arm2`` -> ``rule``; ``3-way`` -> ``3-way``; None -> ``baseline``."""
    text = "baseline" if origin is None or origin == "" else str(origin)
    if "@" in text:
        text = text.rpartition("@")[0] or text
    return text.split(":", 1)[0]


def is_design(origin: object) -> bool:
    source = source_of(origin)
    return source in DESIGN_SOURCES or source.endswith("-way")


def _factor(origins: np.ndarray) -> tuple[list[object], np.ndarray]:
    """Distinct origins and each execution's index among them (None read as the baseline)."""
    text = np.array(["baseline" if o is None else str(o) for o in origins.tolist()]) \
        if origins.dtype == object else origins.astype(str)
    names, codes = np.unique(text, return_inverse=True)
    return names.tolist(), codes.reshape(-1)


def design_mask(frame: AnalysisFrame) -> np.ndarray:
    """Per execution: whether it belongs to the design (all of them when origins are unknown)."""
    if frame.origins is None:
        return np.ones(len(frame), dtype=bool)
    names, codes = _factor(frame.origins)
    return np.array([is_design(o) for o in names], dtype=bool)[codes] if names else \
        np.ones(len(frame), dtype=bool)


def source_counts(frame: AnalysisFrame, mask: np.ndarray) -> dict[str, list[int]]:
    """``{source: [executions, failures]}`` among the executions in ``mask``."""
    if not mask.any():
        return {}
    origins = frame.origins if frame.origins is not None else np.full(len(frame), "baseline")
    names, codes = _factor(origins[mask])
    n = np.bincount(codes, minlength=len(names))
    f = np.bincount(codes, weights=frame.failed[mask], minlength=len(names))
    out: dict[str, list[int]] = {}
    for code, origin in enumerate(names):
        entry = out.setdefault(source_of(origin), [0, 0])
        entry[0] += int(n[code])
        entry[1] += int(f[code])
    return dict(sorted(out.items()))
