"""Analysis on data not sampled at random: design executions carry the tests, guided ones give
hypotheses; numeric levels merge into thresholds; sparse interactions are noted; long values are
abbreviated."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.stored import store_run
from testfleet.analysis.correlation import analyze, next_variants
from testfleet.analysis.dataset import load_frame
from testfleet.analysis.design import design_mask, is_design, source_of
from testfleet.analysis.frame import frame_from_rows
from testfleet.analysis.rules import abbreviate, abbreviate_params
from testfleet.store.db import Store

GRID = list(itertools.product([1, 2, 4, 8, 12, 16], ["on", "off"], range(12)))  # 144 cases


def _plain_suite(seed: int) -> list[tuple[str, dict, str, bool, str]]:
    """The issue's plain parametrized suite: 144 cases, failing only when cache=off and
    threads>8; the scheduler put most failing cases on gw1."""
    rng = np.random.default_rng(seed)
    out = []
    for threads, cache, size in GRID:
        fails = cache == "off" and threads > 8
        worker = "gw1" if rng.random() < (0.9 if fails else 0.4) else "gw0"
        params = {"threads": threads, "cache": cache, "size": size}
        out.append((f"tests/test_cache.py::test_cache[{threads}-{cache}-{size}]", params,
                    worker, fails, "baseline"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_plain_parametrized_suite_blames_threads_over_8_not_the_worker(tmp_path: Path,
                                                                       seed: int) -> None:
    path = tmp_path / "s.duckdb"
    store_run(path, "r1", _plain_suite(seed))
    with Store.open(path) as db:
        frame = load_frame(db, [db.get_run("r1")])
    a = analyze(frame, seed=seed)
    by = {i.column: i for i in a.impacts}
    assert not by["worker"].significant and by["worker"].status == "not testable"
    assert by["worker"].note == "not testable: confounded with the variants"
    assert by["cache"].significant and by["threads"].significant
    assert a.rules[0].conditions and {c.text for c in a.rules[0].conditions} == {"cache=off", "threads>8"}
    assert not any("threads=12" in r.text or "threads=16" in r.text for r in a.rules)


def test_worker_is_tested_by_variants_that_ran_on_both_workers_and_acquitted(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store_run(path, "r1", _plain_suite(0))
    # the second run puts every case on the other worker: now worker is testable, and innocent
    store_run(path, "r2", [(n, p, "gw0" if w == "gw1" else "gw1", f, o)
                           for n, p, w, f, o in _plain_suite(0)], minute=5)
    with Store.open(path) as db:
        frame = load_frame(db, [db.get_run("r2"), db.get_run("r1")])
    worker = next(i for i in analyze(frame).impacts if i.column == "worker")
    assert worker.status == "tested" and worker.test.startswith("cochran-mantel-haenszel")
    assert worker.details["strata"] == 144 and not worker.significant


def test_a_worker_that_really_fails_is_found_within_variants(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    rows = [(f"t::c[{k}]", {"k": k, "m": k % 4}, w, w == "gw1" and k % 2 == 0, "baseline")
            for k in range(60) for w in ("gw0", "gw1")]
    store_run(path, "r1", rows)
    with Store.open(path) as db:
        frame = load_frame(db, [db.get_run("r1")])
    worker = next(i for i in analyze(frame).impacts if i.column == "worker")
    assert worker.significant and worker.p_value < 1e-6


def test_guided_executions_give_hypotheses_never_significance(tmp_path: Path) -> None:
    # the design (random points) shows no link between x and failure; mutations chosen next to
    # failures pile up at x=7 and all fail
    rng = np.random.default_rng(4)
    rows = [("t::c", {"x": int(x), "y": int(y)}, "gw0", bool(f), "random")
            for x, y, f in zip(rng.integers(0, 10, 300), rng.integers(0, 5, 300),
                               rng.random(300) < 0.1)]
    rows += [("t::c", {"x": 7, "y": 10 + y}, "gw0", True, "mutation") for y in range(5)] * 8
    rows += [("t::c", {"x": 7, "y": 9}, "gw0", True, "rule:big-x")] * 6
    path = tmp_path / "s.duckdb"
    store_run(path, "r1", rows)
    with Store.open(path) as db:
        frame = load_frame(db, [db.get_run("r1")])
    assert design_mask(frame).sum() == 300
    a = analyze(frame)
    assert a.design["guided_sources"] == {"mutation": [40, 40], "rule": [6, 6]}
    assert not any(i.significant for i in a.impacts if i.column in ("x", "y"))
    assert not a.rules
    texts = [h.text for h in a.hypotheses]
    hypothesis = next((h for h in a.hypotheses if h.text.startswith("fails when x=7")), None)
    assert hypothesis is not None, texts
    assert hypothesis.guided == (46, 46) and hypothesis.to_dict()["status"] == "hypothesis"
    assert "significant" not in hypothesis.to_dict()
    # --next follows the hypotheses when the design found nothing
    assert next_variants(frame, a, count=2)


def test_sources_are_told_apart_by_origin() -> None:
    assert [is_design(o) for o in ("baseline", None, "edge", "order", "pairwise", "3-way",
                                   "random", "random@arm1")] == [True] * 8
    assert [is_design(o) for o in ("mutation", "anomaly", "rule:cpu", "replay", "minimize",
                                   "mutation@arm2", "something-new")] == [False] * 7
    assert source_of("rule:cpu@arm2") == "rule" and source_of("") == "baseline"


def test_numeric_levels_merge_into_one_threshold_rule() -> None:
    rows = [{"failed": t >= 12, "params": {"threads": t, "size": s}, "worker": "w0"}
            for t in (1, 2, 4, 8, 12, 16, 24) for s in range(20)]
    rules = analyze(frame_from_rows(rows)).rules
    assert [r.text for r in rules] == ["fails when threads>8: 100% of 60 executions"]


def test_a_failing_middle_band_becomes_a_range_not_a_threshold() -> None:
    rows = [{"failed": 4 <= t <= 8, "params": {"threads": t, "size": s}}
            for t in (1, 2, 4, 8, 12, 16) for s in range(20)]
    rules = analyze(frame_from_rows(rows)).rules
    assert [r.text for r in rules] == ["fails when 2<threads<=8: 100% of 40 executions"]


def test_an_interaction_below_the_minimum_support_is_a_note_with_its_counts() -> None:
    # a=1 and b=1 happens in only 4 executions, all failing; too few to test
    rows = [{"failed": a == 1 and b == 1, "params": {"a": a, "b": b, "c": c}}
            for a, b, c in itertools.product(range(5), range(5), range(12)) if (a, b) != (1, 1)]
    rows += [{"failed": True, "params": {"a": 1, "b": 1, "c": c}} for c in range(4)]
    rows += [{"failed": True, "params": {"a": 3, "b": 3, "c": c}} for c in range(6)]
    a = analyze(frame_from_rows(rows))
    assert any(s.text == "a=1 and b=1" and (s.failures, s.count) == (4, 4) for s in a.sparse)
    assert any("not tested: a=1 and b=1 failed 4 of 4" in n for n in a.notes)
    assert a.to_dict()["sparse_interactions"]


def test_long_values_are_abbreviated_with_their_length() -> None:
    assert abbreviate("x" * 2000) == "x" * 40 + "…(2000 chars)"
    assert abbreviate("short") == "short" and abbreviate(12) == "12"
    shown = abbreviate_params({"memo": "é" * 2000, "n": 3})
    assert shown == "{memo='" + "é" * 40 + "'…(2000 chars), n=3}"


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.integers(-50, 200), min_size=3, max_size=8, unique=True),
       data=st.data())
def test_any_threshold_over_few_numbers_reads_as_one_rule(values: list[int], data) -> None:
    values.sort()
    # at most half of the values fail: where failing is the norm no single value stands out
    cut = data.draw(st.sampled_from(values[(len(values) - 1) // 2:-1]), label="cut")
    rows = [{"failed": v > cut, "params": {"x": v, "noise": k % 3}}
            for v in values for k in range(15)]
    above = [v for v in values if v > cut]
    expected = f"x={above[0]}" if len(above) == 1 else f"x>{cut}"
    assert [r.text.split(":")[0] for r in analyze(frame_from_rows(rows)).rules] == \
        [f"fails when {expected}"]
