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
DESIGN_SOURCES = frozenset({"baseline", "edge", "order", "pairwise", "random", "covering"})


def source_of(origin: object) -> str:
    """``rule:cpu@arm2`` -> ``rule``; ``3-way`` -> ``3-way``; None -> ``baseline``."""
    text = "baseline" if origin is None or origin == "" else str(origin)
    if "@" in text:
        text = text.rpartition("@")[0] or text
    return text.split(":", 1)[0]


def is_design(origin: object) -> bool:
    source = source_of(origin)
    return source in DESIGN_SOURCES or source.endswith("-way")


def design_mask(frame: AnalysisFrame) -> np.ndarray:
    """Per execution: whether it belongs to the design (all of them when origins are unknown)."""
    if frame.origins is None:
        return np.ones(len(frame), dtype=bool)
    kinds = {o: is_design(o) for o in set(frame.origins.tolist())}
    return np.array([kinds[o] for o in frame.origins.tolist()], dtype=bool)


def source_counts(frame: AnalysisFrame, mask: np.ndarray) -> dict[str, list[int]]:
    """``{source: [executions, failures]}`` among the executions in ``mask``."""
    out: dict[str, list[int]] = {}
    origins = frame.origins if frame.origins is not None else np.full(len(frame), "baseline")
    for origin, failed in zip(origins[mask].tolist(), frame.failed[mask].tolist()):
        entry = out.setdefault(source_of(origin), [0, 0])
        entry[0] += 1
        entry[1] += int(failed)
    return dict(sorted(out.items()))
