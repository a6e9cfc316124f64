"""How much each column moves each numeric outcome (duration, telemetry): Kruskal-Wallis over
a categorical column's values, Spearman's rho for a numeric one, BH within each outcome (see
:mod:`testfleet.analysis.correlation`). Split from ``correlation.py``."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from testfleet.analysis.frame import CATEGORICAL
from testfleet.analysis.interactions import bh
from testfleet.analysis.levels import Prepared, rank
from testfleet.analysis.results import Sensitivity

MIN_OUTCOMES = 10    # executions with a value an outcome needs for its sensitivity ranking


def outcome_sensitivity(name: str, y: np.ndarray, preps: list[Prepared], fdr: float
                 ) -> tuple[list[Sensitivity], str | None]:
    valid = ~np.isnan(y)
    nv = int(valid.sum())
    all_valid = nv == y.size
    if nv < MIN_OUTCOMES:
        return [], f"{name}: only {nv} executions with a value"
    yv = y if all_valid else y[valid]
    if yv.min() == yv.max():
        return [], f"{name}: the same value in every execution"
    ry = rank(yv)
    correction = 1 - ry.ties / (nv ** 3 - nv)
    out: list[Sensitivity] = []
    for prep in preps:
        col = prep.column
        if prep.status != "tested":
            continue
        if col.kind == CATEGORICAL:
            groups = col.values + 1 if all_valid else col.values[valid] + 1
            counts = prep.n if all_valid else np.bincount(groups, minlength=prep.n.size)
            sums = np.bincount(groups, weights=ry.ranks, minlength=counts.size)
            present = counts > 0
            k = int(present.sum())
            if k < 2 or correction <= 0:
                continue
            h = (12 / (nv * (nv + 1)) * float(np.sum(sums[present] ** 2 / counts[present]))
                 - 3 * (nv + 1)) / correction
            out.append(Sensitivity(name, col.name, col.kind, "kruskal-wallis", h,
                                   float(stats.chi2.sf(h, k - 1)), h / (nv - 1),
                                   "epsilon_squared", nv))
            continue
        if prep.ranks is None:
            continue
        if all_valid and prep.finite is None:
            rx, rys, n = prep.ranks.ranks, ry.ranks, nv
        else:
            both = valid if prep.finite is None else valid & prep.finite
            n = int(both.sum())
            if n < MIN_OUTCOMES:
                continue
            xs = col.values[both]
            if xs.min() == xs.max():
                continue
            rx, rys = rank(xs).ranks, rank(y[both]).ranks
        mid = n * ((n + 1) / 2) ** 2     # ranks average (n + 1) / 2
        spread = (float(np.dot(rx, rx)) - mid) * (float(np.dot(rys, rys)) - mid)
        if spread <= 0:
            continue
        rho = min(1.0, max(-1.0, (float(np.dot(rx, rys)) - mid) / math.sqrt(spread)))
        t = rho * math.sqrt((n - 2) / max(1 - rho * rho, 1e-300))
        out.append(Sensitivity(name, col.name, col.kind, "spearman", rho,
                               float(2 * stats.t.sf(abs(t), n - 2)), abs(rho), "abs_rho", n,
                               rho=rho))
    q = bh(np.array([s.p_value for s in out]))
    for s, qi in zip(out, q):
        s.q_value, s.significant = float(qi), bool(qi <= fdr)
    out.sort(key=lambda s: (s.q_value, -s.effect, s.column))
    return out, None
