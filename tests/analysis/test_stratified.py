"""The stratified environment test: a worker (host, run) is blamed only by variants that ran in
more than one environment, and it keeps its false-positive rate however the scheduler placed
the variants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.frames import frame_from_rows
from testfleet.analysis.correlation import analyze
from testfleet.analysis.stratified import NOT_TESTABLE, stratified_test


def test_one_stratum_cmh_is_pearson_chi_square_scaled_by_n_minus_one_over_n() -> None:
    # the Mantel-Haenszel statistic of a single table is (N - 1) / N times Pearson's chi-square
    rng = np.random.default_rng(1)
    workers = rng.integers(0, 3, 300)
    failed = rng.random(300) < np.array([0.2, 0.3, 0.5])[workers]
    found = stratified_test(workers, failed, np.zeros(300, dtype=int))
    table = np.array([[np.sum(failed & (workers == w)), np.sum(~failed & (workers == w))]
                      for w in range(3)])
    pearson = stats.chi2_contingency(table, correction=False).statistic
    assert abs(found.statistic - pearson * 299 / 300) < 1e-9
    assert found.test == "cochran-mantel-haenszel" and found.details["dof"] == 2
    assert abs(found.p_value - stats.chi2.sf(pearson * 299 / 300, 2)) < 1e-12


def test_variants_that_each_ran_in_one_environment_make_the_factor_not_testable() -> None:
    found = stratified_test(np.array([0, 0, 1, 1]), np.array([True, True, False, False]),
                            np.array(["a", "b", "c", "d"]))
    assert found.p_value is None and found.note == NOT_TESTABLE


def test_a_real_worker_effect_is_found_within_variants() -> None:
    rng = np.random.default_rng(2)
    variants = np.repeat(np.arange(40), 6)
    workers = np.tile([0, 1, 2], 80)
    base = rng.uniform(0.05, 0.3, 40)[variants]
    failed = rng.random(240) < np.where(workers == 2, base + 0.5, base)
    found = stratified_test(workers, failed, variants)
    assert found.p_value < 1e-6 and found.strata == 40


def test_small_counts_use_the_exact_conditional_test() -> None:
    variants = np.repeat(np.arange(6), 3)
    workers = np.tile([0, 1, 2], 6)
    failed = workers == 2
    found = stratified_test(workers, failed, variants, seed=3)
    assert found.test.startswith("cochran-mantel-haenszel (exact")
    # six strata, each failing on exactly the one worker: (1/3)^6 under the null, two-sided-ish
    assert found.p_value < 0.01
    assert found.p_value == stratified_test(workers, failed, variants, seed=3).p_value


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_failures_that_depend_only_on_the_variant_never_make_the_worker_significant(data) -> None:
    variants = data.draw(st.integers(4, 30), label="variants")
    fails = data.draw(st.lists(st.booleans(), min_size=variants, max_size=variants), label="fails")
    # the scheduler may put any execution anywhere: adversarially, failing variants on gw1
    runs = data.draw(st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=4),
                              min_size=variants, max_size=variants), label="workers")
    rows = [{"failed": fails[v], "params": {"x": v % 3, "y": v}, "worker": f"gw{w}",
             "variant_id": f"v{v}"} for v in range(variants) for w in runs[v]]
    if sum(r["failed"] for r in rows) in (0, len(rows)):
        return
    found = stratified_test(np.array([int(r["worker"][2:]) for r in rows]),
                            np.array([r["failed"] for r in rows]),
                            np.array([r["variant_id"] for r in rows]))
    assert found.p_value is None or found.p_value == 1.0
    worker = next(i for i in analyze(frame_from_rows(rows)).impacts if i.column == "worker")
    assert not worker.significant


def test_random_failures_with_workers_placed_by_failure_risk_keep_the_false_positive_rate() -> None:
    # each variant fails at its own rate; risky variants land mostly on gw1 (as a scheduler
    # that sorts by duration might place them); the worker does nothing
    rng = np.random.default_rng(7)
    rejections = marginal = 0
    trials = 200
    for _ in range(trials):
        risk = rng.uniform(0, 0.6, 30)
        variants = np.repeat(np.arange(30), 4)
        on_gw1 = rng.random(120) < np.where(risk[variants] > 0.3, 0.9, 0.2)
        failed = rng.random(120) < risk[variants]
        found = stratified_test(on_gw1.astype(int), failed, variants, seed=int(rng.integers(1 << 30)))
        rejections += found.p_value is not None and found.p_value < 0.05
        table = [[np.sum(failed & on_gw1), np.sum(~failed & on_gw1)],
                 [np.sum(failed & ~on_gw1), np.sum(~failed & ~on_gw1)]]
        marginal += stats.fisher_exact(table).pvalue < 0.05
    assert rejections / trials <= 0.09   # 5 % nominal; binomial sd at 200 trials is 1.5 %
    assert marginal / trials >= 0.5      # the unstratified test blames the worker


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_worker_is_not_testable_when_every_variant_ran_on_one_worker(data) -> None:
    variants = data.draw(st.integers(6, 30), label="variants")
    fails = data.draw(st.lists(st.booleans(), min_size=variants, max_size=variants))
    worker = data.draw(st.lists(st.integers(0, 2), min_size=variants, max_size=variants))
    repeats = data.draw(st.lists(st.integers(1, 3), min_size=variants, max_size=variants))
    rows = [{"failed": fails[v], "params": {"x": v % 4, "y": v}, "worker": f"gw{worker[v]}",
             "variant_id": f"v{v}"} for v in range(variants) for _ in range(repeats[v])]
    impact = next(i for i in analyze(frame_from_rows(rows)).impacts if i.column == "worker")
    assert not impact.significant
    if len(set(worker)) > 1 and impact.status != "constant":
        assert impact.status in ("not testable", "not tested")
        if impact.status == "not testable":
            assert impact.note == NOT_TESTABLE
