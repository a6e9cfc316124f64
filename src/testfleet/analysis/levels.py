"""Each column of an analysis, prepared once for every test: its levels (categorical codes,
rarest values lumped past ``MAX_LEVELS``; numeric values in quantile bins, unset a level of its
own), executions and failures per level, the condition each level stands for, and a numeric
column's ranks (used by :mod:`testfleet.analysis.impacts` and
:mod:`testfleet.analysis.sensitivity`). Split from ``correlation.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testfleet.analysis.display import number
from testfleet.analysis.findings import Condition
from testfleet.analysis.frame import CATEGORICAL, Column
from testfleet.analysis.interactions import MAX_LEVELS


@dataclass
class Ranks:
    ranks: np.ndarray          # average ranks (1-based) of the finite values
    ties: float                # sum of t^3 - t over tie groups
    values: np.ndarray         # distinct values, ascending
    cumulative: np.ndarray     # executions with a value <= each distinct value


def rank(x: np.ndarray) -> Ranks:
    """Average ranks; small-range integers by counting, anything else by one argsort."""
    n = x.size
    lo, hi = float(x.min()), float(x.max())
    if (hi - lo <= (1 << 20) and np.array_equal(x[:256], np.round(x[:256]))
            and np.array_equal(x, np.round(x))):
        v = (x - lo).astype(np.intp)
        counts = np.bincount(v)
        cumulative = np.cumsum(counts)
        ranks = (cumulative - (counts - 1) / 2.0)[v]
        present = counts > 0
        values, cumulative, counts = np.flatnonzero(present) + lo, cumulative[present], counts[present]
    else:
        order = np.argsort(x)
        xs = x[order]
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(xs[1:], xs[:-1], out=new[1:])
        ranks = np.empty(n)
        if new.all():                        # no ties
            cumulative = np.arange(1, n + 1)
            ranks[order] = cumulative
            return Ranks(ranks, 0.0, xs, cumulative)
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        cumulative = starts + counts
        ranks[order] = (cumulative - (counts - 1) / 2.0)[np.cumsum(new) - 1]
        values = xs[starts]
    counts = counts.astype(float)
    return Ranks(ranks, float(np.sum(counts ** 3 - counts)), values.astype(float), cumulative)


@dataclass
class Prepared:
    column: Column
    index: int
    n: np.ndarray              # executions per value (categorical: code + 1, 0 = unset;
    f: np.ndarray              # numeric: bins, then unset)
    conditions: list[Condition]
    status: str = "tested"
    note: str | None = None
    ranks: Ranks | None = None
    finite: np.ndarray | None = None     # numeric: rows with a value (None: all)
    levels: np.ndarray | None = None     # uint8 level per execution, rare values lumped
    size: int = 0
    keep: np.ndarray | None = None       # value index of each level (lumped level excluded)
    edges: np.ndarray | None = None      # numeric: bin edges


def prepare(column: Column, index: int, failing: np.ndarray, bins: int, total: int) -> Prepared:
    name, source = column.name, column.source
    if column.kind == CATEGORICAL:
        shifted = column.values + 1
        labels = column.labels or []
        n = np.bincount(shifted, minlength=len(labels) + 1)
        f = np.bincount(shifted[failing], minlength=len(labels) + 1)
        conds = [Condition(name, "unset", source=source)] + [
            Condition(name, "=", value=label, code=i, source=source) for i, label in enumerate(labels)]
        prep = Prepared(column, index, n, f, conds)
        present = np.flatnonzero(n)
        if present.size <= 1:
            prep.status = "constant"
            prep.note = ("always unset" if not present.size or present[0] == 0
                         else f"one value ({labels[present[0] - 1]}) in every execution")
        elif present.size > max(MAX_LEVELS, total // 2):
            prep.status = "too many values"
            prep.note = f"{present.size:,} distinct values in {total:,} executions"
        else:
            order = present[np.argsort(-n[present], kind="stable")]
            keep = order[:MAX_LEVELS] if order.size <= MAX_LEVELS else order[:MAX_LEVELS - 1]
            lut = np.full(n.size, keep.size, dtype=np.uint8)
            lut[keep] = np.arange(keep.size)
            prep.levels, prep.keep = lut[shifted], keep
            prep.size = keep.size + (order.size > keep.size)
        return prep
    x = np.asarray(column.values, dtype=float)
    nan = np.isnan(x)
    finite = None if not nan.any() else ~nan
    xf = x if finite is None else x[finite]
    if xf.size == 0 or xf.min() == xf.max():
        edges = np.empty(0)
        ranks = None
    else:
        ranks = rank(xf)
        if ranks.values.size <= bins:
            edges = ranks.values[:-1]
        else:
            at = np.searchsorted(ranks.cumulative, np.arange(1, bins) * xf.size / bins)
            edges = np.unique(ranks.values[np.minimum(at, ranks.values.size - 1)])
            edges = edges[edges < ranks.values[-1]]
    if edges.size <= 16:     # a compare per edge beats searchsorted's binary search
        levels = np.zeros(x.size, dtype=np.uint8)
        for edge in edges:
            levels += (x > edge).view(np.uint8)
    else:
        levels = np.searchsorted(edges, x, side="left").astype(np.uint8)
    if finite is not None:
        levels[nan] = edges.size + 1
    if ranks is not None:    # executions per bin from the cumulative counts
        below = ranks.cumulative[np.searchsorted(ranks.values, edges)]
        n = np.diff(np.concatenate([[0], below, [xf.size]]))
        n = np.append(n, x.size - xf.size)
    else:
        n = np.bincount(levels, minlength=edges.size + 2)
    f = np.bincount(levels[failing], minlength=edges.size + 2)
    bounds = [None, *edges.tolist(), None]
    conds = [Condition(name, "range", low=bounds[i], high=bounds[i + 1], source=source)
             for i in range(edges.size + 1)] + [Condition(name, "unset", source=source)]
    prep = Prepared(column, index, n, f, conds, ranks=ranks, finite=finite, edges=edges)
    present = np.flatnonzero(n)
    if present.size <= 1:
        prep.status = "constant"
        prep.note = "always unset" if xf.size == 0 else f"one value ({number(xf[0])}) in every execution"
    else:
        prep.levels, prep.keep, prep.size = levels, np.arange(n.size), n.size
    return prep
