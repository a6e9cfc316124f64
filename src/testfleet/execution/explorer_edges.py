"""The edge proposals of one explorable case, the most telling first.

Three kinds (origins ``edge:sweep``, ``edge:equal`` and ``edge``, one family: design points for
the analysis); the sweeps run first, the other two are arms of the allocation
(:mod:`testfleet.execution.allocation`):

* **sweeps**: row ``k`` sets *every* dimension to its ``k``-th edge value (a dimension with
  fewer edges keeps a uniform random value): row 0 each at its most telling low value (zero,
  empty, the minimum), row 1 each at its far end (the maximum, the longest), and so on, so all
  the boundaries and special values of a space are tried in as many executions as its richest
  dimension has edges, not in their sum.
  A defect behind one exact value (an amount of 0, a width of 1, an empty text) is met in the
  first few executions instead of after every other dimension's edges;
* **equal values**: two integer parameters with overlapping ranges set to the same value
  (``tasks == queue_size``), on a uniform random point: conditions that relate two parameters
  ("exactly full", "a window as long as the data") are boundaries that no single dimension's
  edges reach;
* **single edges**: each edge value alone on a uniform random point, as before, but taken a
  dimension at a time in turn (round robin) rather than all of one dimension's first.

Within a dimension the values go zero and empty first, then -1, the bounds, one and the
longest, the values just inside the bounds, then the rest (2^31 +- 1, 2^63 - 1, special
texts...) in the dimension's order. Every row keeps the space's constraints: a value that would
break one is left out of a sweep (the row keeps its random value there), and an equal-values or
single-edge point that breaks one is not proposed. Deterministic for a given seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from testfleet.space.dimensions import Choice, Dimension, Int
from testfleet.space.space import Space

__all__ = ["EDGE_RANK", "equal_rows", "ranked_edges", "round_robin", "sweep_rows"]

#: Rank of an edge by its label (lower first); labels not named here come last, in order.
EDGE_RANK = {"zero": 0, "empty": 0, "-1": 1, "min": 2, "max": 2, "as declared": 2, "reversed": 2,
             "null": 2, "absent": 2, "one": 3, "longest": 3, "shortest": 3,
             "just above min": 4, "just below max": 4}
_LAST = 5
#: Equal-value rows at most (pairs of integer parameters x values).
MAX_EQUAL_ROWS = 24


def ranked_edges(dim: Dimension) -> list[tuple[str, Any]]:
    """``dim.edges()``, most telling first (stable within a rank), with the dimension's far end
    (the largest number, the longest text or list, a choice's last value) second: sweep row 1
    then takes every dimension at its far end at once (the biggest payload with the most
    clients and the largest page), where row 0 took each at its most telling low value."""
    edges = sorted(dim.edges(), key=lambda edge: EDGE_RANK.get(edge[0], _LAST))
    high = _far_end(dim, edges)
    if high is not None and high > 0:
        edges.insert(1, edges.pop(high))
    return edges


def _far_end(dim: Dimension, edges: Sequence[tuple[str, Any]]) -> int | None:
    """The index in ``edges`` of the dimension's far end (None: it has none)."""
    if not edges:
        return None
    if isinstance(dim, Choice):  # Bool too: True after False
        last = dim.edges()[-1][1]
        return next((i for i, (_label, value) in enumerate(edges) if value == last), None)

    def size(value: Any) -> float | None:
        if isinstance(value, (str, list, tuple)):
            return float(len(value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    sized = [(size(value), i) for i, (_label, value) in enumerate(edges) if size(value) is not None]
    return max(sized, key=lambda pair: (pair[0], -pair[1]))[1] if sized else None


def sweep_rows(space: Space, backgrounds: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Rows that set every dimension to its ``k``-th ranked edge, on ``backgrounds[k]`` (one
    uniform random point per row; the baseline where there are too few), with a label."""
    edges = {name: ranked_edges(dim) for name, dim in space.dimensions.items()}
    depth = max((len(found) for found in edges.values()), default=0)
    rows: list[tuple[dict[str, Any], str]] = []
    seen: set[str] = set()
    for k in range(depth):
        row = dict(backgrounds[k]) if k < len(backgrounds) else dict(space.baseline())
        for name, found in edges.items():
            if k < len(found):
                trial = {**row, name: found[k][1]}
                if not space.violations(trial):
                    row = trial
        key = repr(sorted(row.items(), key=lambda item: item[0]))
        if key not in seen and not space.violations(row):
            seen.add(key)
            rows.append((row, f"sweep {k + 1}"))
    return rows


def equal_rows(space: Space, backgrounds: Sequence[Mapping[str, Any]],
               seed: int) -> list[tuple[dict[str, Any], str]]:
    """Points where two integer parameters with overlapping ranges hold the same value: a seeded
    random value inside the overlap and its top, each on a background point; the pairs with
    the widest overlap first."""
    rng = np.random.default_rng(seed)
    ints = [(name, dim) for name, dim in space.dimensions.items() if isinstance(dim, Int)]
    rows: list[tuple[dict[str, Any], str]] = []
    backdrop = itertools.cycle(list(backgrounds) or [space.baseline()])
    pairs = []
    for (a, dim_a), (b, dim_b) in itertools.combinations(ints, 2):
        lo, hi = max(dim_a.min, dim_b.min), min(dim_a.max, dim_b.max)
        if lo <= hi:
            pairs.append((hi - lo, a, dim_a, b, dim_b, lo, hi))
    # the widest overlaps first: two parameters of a few values each meet by chance anyway,
    # two counts up to 64 once in 64 points
    pairs.sort(key=lambda pair: -pair[0])
    for _width, a, dim_a, b, dim_b, lo, hi in pairs:
        drawn = int(rng.integers(lo, hi + 1))
        for value in dict.fromkeys((drawn, hi)):
            if not (dim_a.contains(value) and dim_b.contains(value)):
                continue
            row = {**next(backdrop), a: value, b: value}
            if not space.violations(row):
                rows.append((row, f"{a}={b}={value}"))
        if len(rows) >= MAX_EQUAL_ROWS:
            break
    return rows[:MAX_EQUAL_ROWS]


def round_robin(points: Sequence[Any], name_of: Any, label_of: Any) -> list[Any]:
    """``points`` (each one dimension's edge) reordered: each dimension's most telling edge,
    then each one's second, and so on; dimensions in their first appearance's order."""
    groups: dict[str, list[Any]] = {}
    for point in points:
        groups.setdefault(name_of(point), []).append(point)
    ranked = [sorted(group, key=lambda p: EDGE_RANK.get(label_of(p), _LAST)) for group in groups.values()]
    depth = max((len(group) for group in ranked), default=0)
    return [group[k] for k in range(depth) for group in ranked if k < len(group)]
