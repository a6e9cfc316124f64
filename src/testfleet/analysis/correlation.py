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
  its values alone, is a note with its counts (``Analysis.sparse``), unless a rule explains it;
  so is a rule whose refined range matches too few executions (``Analysis.small_rules``:
  ``amount<=0``, 8 of 8), which becomes a hypothesis where guided executions suggest it.
* **Conditional check** - a significant parameter but the strongest must still go with failure
  within the values of the stronger ones (stratified CMH), else it is "explained by" them.

Too little data gives a reason (``Analysis.not_enough_data``, a column's ``note``) rather than a
finding: fewer than ``MIN_FAILURES`` failing or ``MIN_PASSES`` passing executions, a parameter
with one value, a parameter with nearly one value per execution.
"""

from __future__ import annotations

import time

import numpy as np

from testfleet.analysis.design import design_mask, source_counts
from testfleet.analysis.findings import Candidate, Condition, Rule, build_rules
from testfleet.analysis.frame import AnalysisFrame
from testfleet.analysis.hypotheses import hypotheses
from testfleet.analysis.followups import FollowUp, next_variants  # noqa: F401  (re-exported for callers)
from testfleet.analysis.impacts import column_impact, value_tests
from testfleet.analysis.interactions import MIN_SUPPORT, Combination, bh, search
from testfleet.analysis.levels import Prepared, prepare
from testfleet.analysis.results import (
    Analysis,
    Impact,
    Interaction,
    Sensitivity,
    ValueRate,
)
from testfleet.analysis.sensitivity import outcome_sensitivity
from testfleet.analysis.stratified import NOT_TESTABLE, stratified_test

MIN_FAILURES = 5     # failing executions needed before anything is blamed
MIN_PASSES = 5       # passing executions needed to compare with

__all__ = ["Analysis", "Condition", "FollowUp", "Impact", "Interaction", "Rule", "Sensitivity",
           "ValueRate", "analyze", "next_variants"]

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
        result.hypotheses = hypotheses(frame, design, result.rules,
                                       everything.rules + everything.small_rules)
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


def _environment_impact(impact: Impact, prep: Prepared, frame: AnalysisFrame,
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


CONDITIONERS = 3   # the strongest significant columns a weaker one is tested within


def _conditional(impacts: list[Impact], preps: list[Prepared], failed: np.ndarray, fdr: float,
                 seed: int) -> None:
    """A significant parameter stays significant only if it still goes with failure within the
    values of the stronger significant parameters (up to ``CONDITIONERS``, strongest first): a
    Cochran-Mantel-Haenszel test (exact when small) stratified by their joint levels.

    Why. A design is not always balanced: edge rows change one parameter at a time from the
    baseline, so the baseline values of every parameter turn up together, and a parameter that
    merely co-occurs with the cause's values looks tied to failure on its own. Within the cause's
    values it does not. A real second cause, or a part of an interaction (``cache=off`` within
    ``threads>8``), still does. This only ever withdraws significance, so the false discovery
    control of the marginal tests holds."""
    # (levels, size) of each impact's column that has levels: only those can be conditioned
    leveled = {id(i): (p.levels, p.size) for i, p in zip(impacts, preps) if p.levels is not None}
    ranked = sorted((i for i in impacts if i.significant and i.source == "param"
                     and id(i) in leveled),
                    key=lambda i: (i.p_value, -(i.effect or 0.0), i.column))
    for k, impact in enumerate(ranked[1:], start=1):
        given = ranked[:min(k, CONDITIONERS)]
        strata = np.zeros(failed.size, dtype=np.int64)
        for g in given:
            levels, size = leveled[id(g)]
            strata = strata * (size + 1) + levels
        found = stratified_test(leveled[id(impact)][0].astype(np.int64), failed, strata,
                                seed=seed)
        names = " and ".join(g.column for g in given)
        impact.details["conditional"] = {"given": [g.column for g in given],
                                         "test": found.test, "p_value": found.p_value,
                                         "strata": found.strata}
        if found.p_value is not None and found.p_value <= fdr:
            continue
        impact.significant = False
        impact.note = (f"confounded with {names}: never varies within their values"
                       if found.p_value is None else
                       f"explained by {names}: within their values p={found.p_value:.2g}")


def _analyze(frame: AnalysisFrame, fdr: float, bins: int, max_order: int, seed: int) -> Analysis:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    failed = np.asarray(frame.failed, dtype=bool)
    total, fails = int(failed.size), int(failed.sum())
    failing = np.flatnonzero(failed)
    rng = np.random.default_rng(seed)
    preps = [prepare(c, i, failing, bins, total) for i, c in enumerate(frame.columns)]
    reason = _not_enough(total, fails)
    if reason is None and preps and all(p.status != "tested" for p in preps):
        reason = "no parameter varies enough to be tested"
    elif reason is None and not preps:
        reason = "no parameters"
    timings["prepare"] = time.perf_counter() - clock
    clock = time.perf_counter()
    impacts = [column_impact(p, failed, rng, reason is None) for p in preps]
    for impact, prep in zip(impacts, preps):
        if impact.source == "env" and impact.status == "tested":
            _environment_impact(impact, prep, frame, failed, seed)
    tested = [i for i in impacts if i.p_value is not None]
    for impact, q in zip(tested, bh(np.array([i.p_value for i in tested]))):
        impact.q_value, impact.significant = float(q), bool(q <= fdr)
    if reason is None:
        _conditional(impacts, preps, failed, fdr, seed)
        value_tests(impacts, total, fails, fdr)
    timings["impacts"] = time.perf_counter() - clock
    clock = time.perf_counter()
    interactions: list[Interaction] = []
    sparse: list[Combination] = []
    tested_count = 0
    notes: list[str] = []
    if reason is None and max_order >= 2:
        # an environment factor joins combinations only once its stratified test holds
        usable = [p for p, i in zip(preps, impacts) if p.levels is not None
                  and (p.column.source != "env" or i.significant)]
        by_index = {p.index: p for p in usable}
        singles: list[tuple[np.ndarray, np.ndarray]] = []
        testable: list[np.ndarray] = []
        for p in preps:
            if p.levels is None or p.keep is None:  # set together: a column with levels
                singles.append((np.zeros(1), np.zeros(1)))
                testable.append(np.zeros(1, dtype=bool))
                continue
            lumped = np.full(p.n.size, p.keep.size)
            lumped[p.keep] = np.arange(p.keep.size)
            n, f = (np.bincount(lumped, weights=w, minlength=p.size)[:p.size].astype(np.int64)
                    for w in (p.n, p.f))
            singles.append((n, f))
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
                                   for i in impacts for v in i.values
                                   if v.elevated and v.q_value is not None]  # elevated: tested
    candidates += [(i.conditions, "interaction", i.q_value, i.count, i.failures)
                   for i in interactions]
    small: list[Rule] = []
    rules = build_rules(frame, candidates, edges, fdr,
                        {i.column for i in impacts if i.significant}, small) \
        if reason is None else []
    # a combination too small to test is a note, unless a rule already explains its failures
    explained = np.logical_or.reduce([r.mask(frame) for r in rules] or [np.zeros(total, bool)])
    small = [r for r in small if (r.mask(frame) & failed & ~explained).any()]
    notes += [f"below the minimum support ({MIN_SUPPORT} executions), not tested: {r.text}"
              for r in small]
    below: list[Interaction] = []
    for c in sparse:
        small_combo = Interaction(_conditions(preps, c), c.count, c.failures, c.rate,
                                  c.component_rate, c.lift, c.p_value, c.q_value,
                                  significant=False)
        cell = np.logical_and.reduce([k.mask(frame.column(k.column))
                                      for k in small_combo.conditions])
        if not (cell & failed & ~explained).any():
            continue
        below.append(small_combo)
        notes.append(f"below the minimum support ({MIN_SUPPORT} executions), not tested: "
                     f"{small_combo.text} failed {small_combo.failures} of {small_combo.count} "
                     f"(its values alone at most {small_combo.component_rate:.0%})")
    timings["rules"] = time.perf_counter() - clock
    clock = time.perf_counter()
    sensitivity: dict[str, list[Sensitivity]] = {}
    for name, y in frame.outcomes.items():
        ranked, note = outcome_sensitivity(name, np.asarray(y, dtype=float), preps, fdr)
        sensitivity[name] = ranked
        if note:
            notes.append(f"sensitivity of {note}")
    timings["sensitivity"] = time.perf_counter() - clock
    impacts.sort(key=lambda i: (i.p_value is None, i.q_value if i.q_value is not None else 1.0,
                                -(i.effect or 0.0), i.column))
    return Analysis(total, fails, fdr, reason, impacts, interactions, rules, sensitivity,
                    tested_count, notes, timings, sparse=below, small_rules=small)


def _conditions(preps: list[Prepared], combo: Combination) -> list[Condition]:
    out = []
    for c, lv in zip(combo.columns, combo.levels):
        keep = preps[c].keep
        assert keep is not None  # search() only combines columns that have levels (and keep)
        out.append(preps[c].conditions[int(keep[lv])])
    return out
