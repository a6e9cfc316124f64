"""Which parameters go with failures: per-column tests, value combinations, readable rules,
outcome sensitivity, and the next variants worth running.

``analyze(frame)`` answers on an :class:`~testfleet.analysis.frame.AnalysisFrame`:

* **Impacts** - one test per column of "failure is independent of this parameter":
  categorical columns (unset is a value of its own) by Pearson's chi-square test of the
  value x outcome table without Yates' correction; a 2 x 2 table with an expected count
  below 5 by Fisher's exact test; a larger table where more than 20 % of the expected counts
  are below 5 (or one below 1, Cochran's rule) by a seeded Monte-Carlo exact conditional test
  (``MC_SAMPLES`` tables drawn with both margins fixed, as R's ``simulate.p.value``). Effect
  size: Cramer's V (``sqrt(chi2 / n)`` for a two-column table). Numeric columns: Mann-Whitney U
  of failed vs passed (normal approximation with tie and continuity correction, scipy's
  asymptotic method) and, because U only sees shifts, a chi-square test over the quantile bins
  (which also sees a failing middle band and unset values); the column's p-value is the
  Bonferroni combination ``min(1, 2 min(p_U, p_bins))``. Effect size: |point-biserial r|.
  Benjamini-Hochberg q-values over all tested columns; sorted by q, then effect.
* **Values** - each value (or bin) of each tested column against the rest by a one-sided
  Fisher exact test, BH over all values; a value is *elevated* when its column is significant
  and its own q-value is within the FDR.
* **Interactions** - 2- and 3-way value combinations that fail more often than each of their
  parts (see :mod:`testfleet.analysis.interactions`).
* **Rules** - elevated values (neighbouring numeric bins merged) and interactions, as
  ``fails when cache=off and threads>8: 97% of 120 executions``. A numeric condition's bounds
  are moved to the observed values that best separate failures (largest 2 x 2 chi-square among
  the executions matching the rule's other conditions) - the bins only found the column. Rules
  are ranked by the lower Wilson bound of their confidence (confidence and support at once);
  a rule is kept only if the executions it matches beyond the rules kept before it still fail
  ``LIFT`` times as often as the executions no kept rule matches, significantly so (one-sided
  Fisher, Bonferroni over the candidates), so a rule implied by a stronger one (its
  specialisation, or a part of an interaction) is dropped. Rules are descriptive: their bounds
  were fitted, so their confidence is a little optimistic; the tests behind them are not.
* **Sensitivity** - for every numeric outcome (duration, telemetry): Kruskal-Wallis over a
  categorical column's values (effect: epsilon squared, ``H / (n - 1)``) or Spearman's rho for
  a numeric column (effect: |rho|), BH within each outcome.

* **Design and guided executions** - the tests above use only the design executions
  (:mod:`testfleet.analysis.design`); rules found on all executions but not on the design
  become ``hypotheses`` with their counts (:mod:`testfleet.analysis.hypotheses`).
* **Environment** - worker, run, host, Python and OS are not tested across variants (the
  scheduler chose which variants each ran) but by a Cochran-Mantel-Haenszel test stratified by
  variant (:mod:`testfleet.analysis.stratified`), or reported "not testable: confounded with
  the variants"; they join combinations only once that test holds.
* **Thresholds** - a categorical column whose values are all numbers is ordered: its elevated
  values become ranges that merge and refine like numeric bins (``threads>8``), and a rule may
  gain one threshold on another ordered column, significant on its own, when that
  significantly separates the rule's own failures (``cache=off`` -> ``cache=off and
  threads>8``, Bonferroni over the cuts tried).
* **Sparse combinations** - a value pair below ``MIN_SUPPORT`` that mostly failed, more than
  its values alone, is a note with its counts (``Analysis.sparse``), unless a rule explains it.

Too little data gives a reason (``Analysis.not_enough_data``, a column's ``note``) rather than a
finding: fewer than ``MIN_FAILURES`` failing or ``MIN_PASSES`` passing executions, a parameter
with one value, a parameter with nearly one value per execution.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from testfleet.analysis.design import design_mask, source_counts
from testfleet.analysis.frame import CATEGORICAL, AnalysisFrame, Column
from testfleet.analysis.hypotheses import hypotheses
from testfleet.analysis.interactions import (
    MAX_LEVELS,
    MIN_SUPPORT,
    Combination,
    bh,
    p_floor,
    p_greater,
    search,
)
from testfleet.analysis.results import (
    Analysis,
    Impact,
    Interaction,
    Sensitivity,
    ValueRate,
)
from testfleet.analysis.rules import (
    Candidate,
    Condition,
    Rule,
    build_rules,
    number,
)
from testfleet.analysis.stratified import NOT_TESTABLE, stratified_test

MIN_FAILURES = 5     # failing executions needed before anything is blamed
MIN_PASSES = 5       # passing executions needed to compare with
MC_SAMPLES = 9999    # Monte-Carlo tables for sparse contingency tables
MIN_OUTCOMES = 10    # executions with a value an outcome needs for its sensitivity ranking

__all__ = ["Analysis", "Condition", "Impact", "Interaction", "Proposal", "Rule", "Sensitivity",
           "ValueRate", "analyze", "next_variants"]


# ------------------------------------------------------------------------------- preparation

@dataclass
class _Ranks:
    ranks: np.ndarray          # average ranks (1-based) of the finite values
    ties: float                # sum of t^3 - t over tie groups
    values: np.ndarray         # distinct values, ascending
    cumulative: np.ndarray     # executions with a value <= each distinct value


def _rank(x: np.ndarray) -> _Ranks:
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
            return _Ranks(ranks, 0.0, xs, cumulative)
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        cumulative = starts + counts
        ranks[order] = (cumulative - (counts - 1) / 2.0)[np.cumsum(new) - 1]
        values = xs[starts]
    counts = counts.astype(float)
    return _Ranks(ranks, float(np.sum(counts ** 3 - counts)), values.astype(float), cumulative)


@dataclass
class _Prep:
    column: Column
    index: int
    n: np.ndarray              # executions per value (categorical: code + 1, 0 = unset;
    f: np.ndarray              # numeric: bins, then unset)
    conditions: list[Condition]
    status: str = "tested"
    note: str | None = None
    ranks: _Ranks | None = None
    finite: np.ndarray | None = None     # numeric: rows with a value (None: all)
    levels: np.ndarray | None = None     # uint8 level per execution, rare values lumped
    size: int = 0
    keep: np.ndarray | None = None       # value index of each level (lumped level excluded)
    edges: np.ndarray | None = None      # numeric: bin edges


def _prepare(column: Column, index: int, failing: np.ndarray, bins: int, total: int) -> _Prep:
    name, source = column.name, column.source
    if column.kind == CATEGORICAL:
        shifted = column.values + 1
        labels = column.labels or []
        n = np.bincount(shifted, minlength=len(labels) + 1)
        f = np.bincount(shifted[failing], minlength=len(labels) + 1)
        conds = [Condition(name, "unset", source=source)] + [
            Condition(name, "=", value=label, code=i, source=source) for i, label in enumerate(labels)]
        prep = _Prep(column, index, n, f, conds)
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
        ranks = _rank(xf)
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
    prep = _Prep(column, index, n, f, conds, ranks=ranks, finite=finite, edges=edges)
    present = np.flatnonzero(n)
    if present.size <= 1:
        prep.status = "constant"
        prep.note = "always unset" if xf.size == 0 else f"one value ({number(xf[0])}) in every execution"
    else:
        prep.levels, prep.keep, prep.size = levels, np.arange(n.size), n.size
    return prep


# ----------------------------------------------------------------------------------- impacts

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


def _mann_whitney(r: _Ranks, fail: np.ndarray) -> tuple[float, float, float]:
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


def _impact(prep: _Prep, failed: np.ndarray, rng: np.random.Generator, run: bool) -> Impact:
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


def _value_tests(impacts: list[Impact], total: int, fails: int, fdr: float) -> None:
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


# ------------------------------------------------------------------------------- sensitivity

def _sensitivity(name: str, y: np.ndarray, preps: list[_Prep], fdr: float
                 ) -> tuple[list[Sensitivity], str | None]:
    valid = ~np.isnan(y)
    nv = int(valid.sum())
    all_valid = nv == y.size
    if nv < MIN_OUTCOMES:
        return [], f"{name}: only {nv} executions with a value"
    yv = y if all_valid else y[valid]
    if yv.min() == yv.max():
        return [], f"{name}: the same value in every execution"
    ry = _rank(yv)
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
            rx, rys = _rank(xs).ranks, _rank(y[both]).ranks
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


# ---------------------------------------------------------------------------------- analysis

def _not_enough(total: int, fails: int) -> str | None:
    if total == 0:
        return "no executions"
    if fails == 0:
        return "no failing executions: nothing to explain"
    if fails == total:
        return "every execution failed: no passing executions to compare with"
    if fails < MIN_FAILURES:
        return (f"only {fails} failing execution{'s' if fails > 1 else ''} of {total:,}: "
                f"at least {MIN_FAILURES} are needed before a parameter can be blamed")
    if total - fails < MIN_PASSES:
        return (f"only {total - fails} passing execution{'s' if total - fails > 1 else ''} "
                f"of {total:,}: at least {MIN_PASSES} are needed to compare with")
    return None


def analyze(frame: AnalysisFrame, *, fdr: float = 0.05, bins: int = 5, max_order: int = 3,
            seed: int = 0) -> Analysis:
    """Impacts, interactions, rules and outcome sensitivity of ``frame`` (see the module).

    Significance comes from the design executions only (:mod:`testfleet.analysis.design`);
    when guided executions exist, what all executions together suggest beyond the design's rules
    becomes ``hypotheses``."""
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be between 0 and 1, not {fdr}")
    if not 2 <= bins <= 250:
        raise ValueError(f"bins must be between 2 and 250, not {bins}")
    if max_order not in (1, 2, 3):
        raise ValueError(f"max_order must be 1, 2 or 3, not {max_order}")
    design = design_mask(frame)
    if design.all():
        result = _analyze(frame, fdr, bins, max_order, seed)
    else:
        result = _analyze(frame.subset(design), fdr, bins, max_order, seed)
        everything = _analyze(frame, fdr, bins, max_order, seed)
        result.hypotheses = hypotheses(frame, design, result.rules, everything.rules)
        if result.not_enough_data and frame.failed[~design].any():
            result.not_enough_data += (" among the design executions; what the guided ones "
                                       "suggest is listed as hypotheses")
    result.design = {
        "executions": int(design.sum()), "failures": int(frame.failed[design].sum()),
        "guided_executions": int((~design).sum()),
        "guided_failures": int(frame.failed[~design].sum()),
        "design_sources": source_counts(frame, design),
        "guided_sources": source_counts(frame, ~design)}
    return result


def _environment_impact(impact: Impact, prep: _Prep, frame: AnalysisFrame,
                        failed: np.ndarray, seed: int) -> None:
    """An environment factor is tested only within variants that ran in more than one of its
    environments (:mod:`testfleet.analysis.stratified`): across variants it is confounded with
    them (the scheduler decides which variants a worker gets)."""
    found = None if frame.variant_ids is None else stratified_test(
        prep.column.values, failed, frame.variant_ids, seed=seed)
    if found is None or found.p_value is None:
        impact.status, impact.note = "not testable", NOT_TESTABLE
        impact.test = impact.statistic = impact.p_value = impact.effect = None
        impact.effect_name, impact.details = None, {}
        return
    impact.test = f"{found.test}, by variant"
    impact.statistic, impact.p_value = found.statistic, found.p_value
    impact.effect, impact.effect_name = None, None
    impact.details = {"strata": found.strata, "executions_in_strata": found.executions,
                      **found.details}
    impact.note = found.note or (f"within the {found.strata} variant(s) that ran in more than "
                                 f"one {prep.column.name}")


def _analyze(frame: AnalysisFrame, fdr: float, bins: int, max_order: int, seed: int) -> Analysis:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    failed = np.asarray(frame.failed, dtype=bool)
    total, fails = int(failed.size), int(failed.sum())
    failing = np.flatnonzero(failed)
    rng = np.random.default_rng(seed)
    preps = [_prepare(c, i, failing, bins, total) for i, c in enumerate(frame.columns)]
    reason = _not_enough(total, fails)
    if reason is None and preps and all(p.status != "tested" for p in preps):
        reason = "no parameter varies enough to be tested"
    elif reason is None and not preps:
        reason = "no parameters"
    timings["prepare"] = time.perf_counter() - clock
    clock = time.perf_counter()
    impacts = [_impact(p, failed, rng, reason is None) for p in preps]
    for impact, prep in zip(impacts, preps):
        if impact.source == "env" and impact.status == "tested":
            _environment_impact(impact, prep, frame, failed, seed)
    tested = [i for i in impacts if i.p_value is not None]
    for impact, q in zip(tested, bh(np.array([i.p_value for i in tested]))):
        impact.q_value, impact.significant = float(q), bool(q <= fdr)
    if reason is None:
        _value_tests(impacts, total, fails, fdr)
    timings["impacts"] = time.perf_counter() - clock
    clock = time.perf_counter()
    interactions: list[Interaction] = []
    sparse: list[Combination] = []
    tested_count, notes = 0, []
    if reason is None and max_order >= 2:
        # an environment factor joins combinations only once its stratified test holds
        usable = [p for p, i in zip(preps, impacts) if p.levels is not None
                  and (p.column.source != "env" or i.significant)]
        by_index = {p.index: p for p in usable}
        singles, testable = [], []
        for p in preps:
            if p.levels is None:
                singles.append((np.zeros(1), np.zeros(1)))
                testable.append(np.zeros(1, dtype=bool))
                continue
            lumped = np.full(p.n.size, p.keep.size)
            lumped[p.keep] = np.arange(p.keep.size)
            singles.append(tuple(np.bincount(lumped, weights=w, minlength=p.size)[:p.size]
                                 .astype(np.int64) for w in (p.n, p.f)))
            testable.append(np.arange(p.size) < p.keep.size)
        order = {i.column: rank for rank, i in enumerate(
            sorted(tested, key=lambda i: (i.q_value, -(i.effect or 0))))}
        ranking = sorted(by_index, key=lambda c: order.get(frame.columns[c].name, len(order)))
        implicated = {p.index for p, i in zip(preps, impacts)
                      if i.significant and p.index in by_index}
        found, tested_count, notes = search(
            [p.levels if p.levels is not None else np.zeros(0, np.uint8) for p in preps],
            [max(p.size, 1) for p in preps], testable, singles, failing, total,
            columns=sorted(by_index), ranking=ranking, implicated=implicated, fdr=fdr,
            max_order=max_order, sparse=sparse)
        for combo in found:
            interactions.append(Interaction(_conditions(preps, combo), combo.count,
                                            combo.failures, combo.rate, combo.component_rate,
                                            combo.lift, combo.p_value, combo.q_value))
    timings["interactions"] = time.perf_counter() - clock
    clock = time.perf_counter()
    edges = {p.column.name: p.edges for p in preps if p.edges is not None}
    candidates: list[Candidate] = [([v.condition], "value", v.q_value, v.count, v.failures)
                                   for i in impacts for v in i.values if v.elevated]
    candidates += [(i.conditions, "interaction", i.q_value, i.count, i.failures)
                   for i in interactions]
    rules = build_rules(frame, candidates, edges, fdr,
                        {i.column for i in impacts if i.significant}) if reason is None else []
    # a combination too small to test is a note, unless a rule already explains its failures
    explained = np.logical_or.reduce([r.mask(frame) for r in rules] or [np.zeros(total, bool)])
    below = []
    for c in sparse:
        combo = Interaction(_conditions(preps, c), c.count, c.failures, c.rate, c.component_rate,
                            c.lift, c.p_value, c.q_value, significant=False)
        cell = np.logical_and.reduce([k.mask(frame.column(k.column)) for k in combo.conditions])
        if not (cell & failed & ~explained).any():
            continue
        below.append(combo)
        notes.append(f"below the minimum support ({MIN_SUPPORT} executions), not tested: "
                     f"{combo.text} failed {combo.failures} of {combo.count} (its values alone "
                     f"at most {combo.component_rate:.0%})")
    timings["rules"] = time.perf_counter() - clock
    clock = time.perf_counter()
    sensitivity: dict[str, list[Sensitivity]] = {}
    for name, y in frame.outcomes.items():
        ranked, note = _sensitivity(name, np.asarray(y, dtype=float), preps, fdr)
        sensitivity[name] = ranked
        if note:
            notes.append(f"sensitivity of {note}")
    timings["sensitivity"] = time.perf_counter() - clock
    impacts.sort(key=lambda i: (i.p_value is None, i.q_value if i.q_value is not None else 1.0,
                                -(i.effect or 0.0), i.column))
    return Analysis(total, fails, fdr, reason, impacts, interactions, rules, sensitivity,
                    tested_count, notes, timings, sparse=below)


def _conditions(preps: list[_Prep], combo: Combination) -> list[Condition]:
    return [preps[c].conditions[int(preps[c].keep[lv])] for c, lv in zip(combo.columns, combo.levels)]


from testfleet.analysis.proposals import Proposal, next_variants
