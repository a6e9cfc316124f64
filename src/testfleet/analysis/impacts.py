"""One test per column of "failure is independent of this parameter", and one per value (see
:mod:`testfleet.analysis.correlation` for the tests and why). Split from ``correlation.py``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from testfleet.analysis.frame import CATEGORICAL
from testfleet.analysis.interactions import MIN_SUPPORT, bh, p_floor, p_greater
from testfleet.analysis.levels import Prepared, Ranks
from testfleet.analysis.results import Impact, ValueRate

MC_SAMPLES = 9999    # Monte-Carlo tables for sparse contingency tables


def _categorical_test(n: np.ndarray, f: np.ndarray, rng: np.random.Generator
                      ) -> tuple[str, float, float, dict[str, Any]]:
    present = n > 0
    n, f = n[present], f[present]
    total, fails = int(n.sum()), int(f.sum())
    table = np.column_stack([f, n - f])
    expected = np.outer(n, [fails, total - fails]) / total
    chi2 = float(stats.chi2_contingency(table, correction=False).statistic)
    details = {"chi2": chi2, "dof": int(n.size - 1), "min_expected": float(expected.min())}
    if n.size == 2 and expected.min() < 5:
        return "fisher exact", chi2, float(stats.fisher_exact(table).pvalue), details
    if n.size > 2 and ((expected < 5).mean() > 0.2 or expected.min() < 1):
        sims = rng.multivariate_hypergeometric(n.astype(np.int64), fails, size=MC_SAMPLES)
        weight = 1 / expected[:, 0] + 1 / expected[:, 1]
        simulated = ((sims - expected[:, 0]) ** 2 * weight).sum(axis=1)
        p = (1 + np.count_nonzero(simulated >= chi2 * (1 - 1e-9))) / (MC_SAMPLES + 1)
        details["samples"] = MC_SAMPLES
        return "chi-square (monte-carlo)", chi2, float(p), details
    return "chi-square", chi2, float(stats.chi2.sf(chi2, n.size - 1)), details


def _mann_whitney(r: Ranks, fail: np.ndarray) -> tuple[float, float, float]:
    """U of the failing values, two-sided asymptotic p, rank-biserial correlation."""
    n = r.ranks.size
    n1 = int(fail.sum())
    n2 = n - n1
    u1 = float(r.ranks[fail].sum()) - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - r.ties / (n * (n - 1))))
    u = max(u1, n1 * n2 - u1)
    p = 1.0 if sigma == 0 else min(1.0, 2 * float(stats.norm.sf((u - mu - 0.5) / sigma)))
    return u1, p, 2 * u1 / (n1 * n2) - 1


def column_impact(prep: Prepared, failed: np.ndarray, rng: np.random.Generator, run: bool) -> Impact:
    col = prep.column
    values = [ValueRate(c, int(k), int(j), float(j / k)) for c, k, j in
              zip(prep.conditions, prep.n, prep.f) if k > 0]
    status = prep.status if prep.status != "tested" or run else "not tested"
    impact = Impact(col.name, col.kind, col.source, status, values, note=prep.note)
    if status != "tested":
        return impact
    test, chi2, p_bins, details = _categorical_test(prep.n, prep.f, rng)
    total = int(prep.n.sum())
    v = math.sqrt(chi2 / total)
    if col.kind == CATEGORICAL:
        impact.test, impact.statistic, impact.p_value = test, chi2, p_bins
        impact.effect, impact.effect_name, impact.details = v, "cramers_v", details
        return impact
    details = {"bins_test": test, "p_bins": p_bins, "cramers_v_bins": v} | details
    fail = failed if prep.finite is None else failed[prep.finite]
    xf = col.values if prep.finite is None else col.values[prep.finite]
    n1 = int(fail.sum())
    if prep.ranks is None or n1 in (0, fail.size):
        impact.test, impact.statistic, impact.p_value = f"{test} over bins", chi2, p_bins
        impact.effect, impact.effect_name, impact.details = v, "cramers_v", details
        return impact
    u, p_u, rank_biserial = _mann_whitney(prep.ranks, fail)
    n0 = fail.size - n1
    mean1 = float(xf[fail].sum()) / n1
    mean0 = (float(xf.sum()) - mean1 * n1) / n0
    sd = float(xf.std())
    r_pb = (mean1 - mean0) / sd * math.sqrt(n1 * n0) / fail.size if sd > 0 else 0.0
    impact.test = f"mann-whitney u + {test} over bins (bonferroni)"
    impact.statistic, impact.p_value = u, min(1.0, 2 * min(p_u, p_bins))
    impact.effect, impact.effect_name = abs(r_pb), "point_biserial_abs"
    impact.details = {"u": u, "p_mann_whitney": p_u, "rank_biserial": rank_biserial,
                      "point_biserial": r_pb, "mean_failed": mean1, "mean_passed": mean0} | details
    return impact


def value_tests(impacts: list[Impact], total: int, fails: int, fdr: float) -> None:
    """One-sided Fisher per value of each tested column, BH over all of them (values whose
    smallest attainable p-value is above ``fdr`` are left untested: Tarone's screen)."""
    slots, n, f = [], [], []
    for impact in impacts:
        if impact.status != "tested":
            continue
        for vr in impact.values:
            if vr.count >= MIN_SUPPORT:
                slots.append((impact, vr))
                n.append(vr.count)
                f.append(vr.failures)
    if not slots:
        return
    n_, f_ = np.array(n), np.array(f)
    ok = p_floor(n_, fails, total) <= fdr
    p = np.ones(n_.size)
    p[ok] = p_greater(f_[ok], n_[ok], fails, total)
    q = np.full(n_.size, np.nan)
    q[ok] = bh(p[ok])
    for (impact, vr), pi, qi, good in zip(slots, p, q, ok):
        if not good:
            continue
        vr.p_value, vr.q_value = float(pi), float(qi)
        vr.elevated = bool(impact.significant and qi <= fdr)
