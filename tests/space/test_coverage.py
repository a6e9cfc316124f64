"""Combinatorial coverage (NIST IR 7878 measures) and its pictures.

The known-truth example is the one in NIST IR 7878; the property tests compare measure() with
an independent brute-force counter written with Python sets, with and without constraints.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError, UsageError
from testfleet.space.coverage import (
    THRESHOLDS,
    CoverageReport,
    measure,
    pair_counts,
    pair_matrix,
)

# NIST IR 7878: four binary variables a, b, c, d and four tests
NIST_ROWS = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1], [0, 1, 1, 1]])


class Forbidden:
    """Oracle rejecting any assignment that contains one of the forbidden partial assignments."""

    def __init__(self, forbidden: list[dict[int, int]]) -> None:
        self.forbidden = forbidden
        self.calls: list[tuple[tuple[int, int], ...]] = []

    def consistent(self, assignment: Mapping[int, int]) -> bool:
        self.calls.append(tuple(sorted(assignment.items())))
        return not any(all(assignment.get(c) == v for c, v in f.items()) for f in self.forbidden)


def brute_force(levels, rows, t, forbidden=()):
    """Per-combination (covered, valid) and missing tuples, by enumeration and sets."""
    def ok(assign):
        return not any(all(assign.get(c) == v for c, v in f.items()) for f in forbidden)

    result = {}
    for cols in itertools.combinations(range(len(levels)), t):
        everything = set(itertools.product(*(range(levels[c]) for c in cols)))
        valid = {vals for vals in everything if ok(dict(zip(cols, vals)))}
        seen = {tuple(int(row[c]) for c in cols) for row in rows} & valid
        result[cols] = (len(seen), len(valid), len(everything), valid - seen)
    return result


def assert_matches_brute_force(report: CoverageReport, levels, rows, t, forbidden=()):
    truth = brute_force(levels, rows, t, forbidden)
    assert [c.columns for c in report.combinations] == list(truth)
    fractions = []
    for combo in report.combinations:
        covered, valid, _, _ = truth[combo.columns]
        assert (combo.covered, combo.valid) == (covered, valid)
        fraction = Fraction(covered, valid) if valid else Fraction(1)
        assert combo.fraction == pytest.approx(float(fraction))
        fractions.append(fraction)
    assert report.covered_tuples == sum(v[0] for v in truth.values())
    assert report.valid_tuples == sum(v[1] for v in truth.values())
    assert report.invalid_tuples == sum(v[2] - v[1] for v in truth.values())
    if report.valid_tuples:
        assert report.simple == pytest.approx(report.covered_tuples / report.valid_tuples)
    assert report.minimum == pytest.approx(float(min(fractions)))
    expected_curve = [sum(f >= Fraction(i, 20) for f in fractions) / len(fractions)
                      for i in range(21)]
    assert [p for p, _ in report.completeness] == list(THRESHOLDS)
    assert [s for _, s in report.completeness] == pytest.approx(expected_curve)
    assert report.full_combinations == pytest.approx(expected_curve[-1])
    gaps = report.gaps()
    assert {(g.columns, g.levels) for g in gaps} == {
        (cols, vals) for cols, v in truth.items() for vals in v[3]}
    assert len(gaps) == len({(g.columns, g.levels) for g in gaps})


def test_nist_ir_7878_example():
    report = measure([2, 2, 2, 2], NIST_ROWS, 2)
    assert (report.covered_tuples, report.valid_tuples) == (19, 24)
    assert report.simple == 19 / 24  # 79%
    assert round(report.simple * 100) == 79
    full = [c.columns for c in report.combinations if c.fraction == 1.0]
    assert full == [(1, 3), (2, 3)]  # bd and cd: 2 of the 6 pairs
    assert report.full_combinations == 2 / 6
    assert round(report.full_combinations * 100) == 33
    assert report.minimum == 0.5  # bc: 00 and 11 only
    assert_matches_brute_force(report, [2, 2, 2, 2], NIST_ROWS, 2)


@st.composite
def models(draw, with_constraints: bool):
    k = draw(st.integers(1, 5))
    levels = draw(st.lists(st.integers(1, 4), min_size=k, max_size=k))
    n = draw(st.integers(0, 12))
    rows = [[draw(st.integers(0, levels[c] - 1)) for c in range(k)] for _ in range(n)]
    t = draw(st.integers(1, min(k, 4)))
    forbidden = []
    if with_constraints:
        for _ in range(draw(st.integers(0, 4))):
            cols = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=2, unique=True))
            forbidden.append({c: draw(st.integers(0, levels[c] - 1)) for c in cols})
    return levels, np.array(rows, dtype=np.int64).reshape(n, k), t, forbidden


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(with_constraints=False))
def test_measure_equals_brute_force(model):
    levels, rows, t, _ = model
    assert_matches_brute_force(measure(levels, rows, t), levels, rows, t)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(with_constraints=True))
def test_measure_with_oracle_equals_brute_force(model):
    levels, rows, t, forbidden = model
    oracle = Forbidden(forbidden)
    report = measure(levels, rows, t, oracle=oracle)
    assert_matches_brute_force(report, levels, rows, t, forbidden)
    assert len(oracle.calls) == len(set(oracle.calls))  # every answer is cached


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_full_covering_set_has_no_gaps(t):
    levels = [2, 3, 2, 3]
    rows = np.array(list(itertools.product(*(range(n) for n in levels))))
    report = measure(levels, rows, t)
    assert report.simple == 1.0
    assert report.full_combinations == 1.0 and report.minimum == 1.0
    assert report.gaps() == []
    assert all(share == 1.0 for _, share in report.completeness)


def test_pairwise_covering_array_is_complete_at_two_but_not_three():
    rows = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]])  # the L4 orthogonal array
    assert measure([2, 2, 2], rows, 2).simple == 1.0
    three = measure([2, 2, 2], rows, 3)
    assert three.simple == 0.5 and len(three.gaps()) == 4


def test_oracle_excludes_invalid_tuples_and_prunes_rejected_levels():
    oracle = Forbidden([{0: 1}, {1: 0, 2: 0}])  # a=1 is impossible; b=0 with c=0 too
    report = measure([2, 2, 2], NIST_ROWS[:, :3], 2, oracle=oracle)
    by_cols = {c.columns: c for c in report.combinations}
    assert by_cols[0, 1].valid == 2 and by_cols[1, 2].valid == 3
    # a row holding a=1 does not count as covering the impossible tuple
    assert by_cols[0, 1].covered == 2 and by_cols[0, 2].covered == 2
    assert report.invalid_tuples == 2 + 2 + 1
    # a=1 was rejected alone, so no pair containing it was asked about
    assert all((0, 1) not in call for call in oracle.calls if len(call) > 1)
    assert {(g.columns, g.levels) for g in report.gaps()} == {((1, 2), (0, 1)), ((1, 2), (1, 0))}


def test_combination_the_oracle_rules_out_counts_as_complete():
    report = measure([2, 2], np.zeros((0, 2), int), 2, oracle=Forbidden([{0: 0}, {0: 1}]))
    assert report.valid_tuples == 0 and report.simple == 1.0
    assert report.combinations[0].fraction == 1.0 and report.gaps() == []


def test_gaps_worst_combination_first_then_rare_values():
    levels = [3, 3, 2]
    rows = np.array([[0, 0, 0]] * 6 + [[1, 1, 0]] * 3 + [[2, 2, 1]])
    report = measure(levels, rows, 2)
    gaps = report.gaps()
    fraction = {c.columns: c.fraction for c in report.combinations}
    keys = [fraction[g.columns] for g in gaps]
    assert keys == sorted(keys)
    assert [g.importance for g in gaps] == sorted((g.importance for g in gaps), reverse=True)
    worst = [g for g in gaps if g.columns == (0, 1)]  # 3 of 9 covered
    assert gaps[: len(worst)] == worst
    # inside that combination the pairs made of rare values (2 is seen once) come first
    assert worst[0].levels in {(2, 1), (1, 2)} and worst[-1].levels in {(0, 1), (1, 0)}
    assert report.gaps(2) == gaps[:2] and report.gaps(0) == []


def test_rows_of_any_int_dtype_give_the_same_report():
    rng = np.random.default_rng(7)
    levels = [3, 4, 2, 5]
    rows = np.column_stack([rng.integers(0, n, 30) for n in levels])
    base = measure(levels, rows, 3)
    for dtype in (np.int8, np.uint8, np.int16, np.uint32, np.int64, np.uint64):
        again = measure(levels, rows.astype(dtype), 3)
        assert again.combinations == base.combinations
        assert again.gaps() == base.gaps()
        assert pair_counts(levels, rows.astype(dtype), 1, 3)[0].tolist() == \
            pair_counts(levels, rows, 1, 3)[0].tolist()


def test_empty_rows_cover_nothing():
    report = measure([2, 3], np.zeros((0, 2), dtype=int))
    assert report.rows == 0 and report.simple == 0.0 and report.covered_tuples == 0
    assert len(report.gaps()) == 6 and report.completeness[0] == (0.0, 1.0)


@pytest.mark.parametrize("levels, rows, t", [
    ([2, 2], [[0, 2]], 2),              # level out of range
    ([2, 2], [[0, -1]], 2),             # negative level
    ([2, 2], [[0, 1, 0]], 2),           # too many columns
    ([2, 2], [[0.5, 1.0]], 2),          # not level indices
    ([2, 2], [[0, 1]], 3),              # strength above the dimensions
    ([2, 0], [[0, 0]], 1),              # a dimension without levels
])
def test_bad_input_is_a_space_error(levels, rows, t):
    with pytest.raises(SpaceError):
        measure(levels, np.array(rows), t)


def test_pair_matrix_and_counts():
    matrix = pair_matrix([2, 2, 2, 2], NIST_ROWS)
    assert matrix.shape == (4, 4) and np.allclose(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 1.0)
    report = measure([2, 2, 2, 2], NIST_ROWS)
    for combo in report.combinations:
        assert matrix[combo.columns] == combo.fraction
    assert pair_matrix([3, 2], np.array([[0, 0], [1, 0]]))[0, 0] == pytest.approx(2 / 3)

    failed = np.array([True, False, False, True])
    counts, fails = pair_counts([2, 2, 2, 2], NIST_ROWS, 0, 1, failed=failed)
    assert counts.tolist() == [[1, 2], [1, 0]] and fails.tolist() == [[1, 1], [0, 0]]
    assert pair_counts([2, 2, 2, 2], NIST_ROWS, 1, 2)[1] is None
    with pytest.raises(SpaceError):
        pair_counts([2, 2, 2, 2], NIST_ROWS, 0, 1, failed=failed[:3])


def test_to_dict_is_json_ready_with_names_and_labels():
    report = measure([2, 2, 2, 2], NIST_ROWS)
    labels = [["off", "on"], None, np.array([10, 20]), ["x", "y"]]
    data = json.loads(json.dumps(report.to_dict(list("abcd"), labels, gap_limit=3)))
    assert data["simple"] == 19 / 24 and data["gaps_total"] == 5 and len(data["gaps"]) == 3
    assert data["combinations"][0]["columns"] == ["a", "b"]
    first = data["gaps"][0]
    assert first["columns"] == ["b", "c"] and first["levels"] in ([0, 20], [1, 10])
    assert data["completeness"][-1] == {"p": 1.0, "fraction": 2 / 6}


# --- pictures --------------------------------------------------------------------------------

def _figures():
    pytest.importorskip("plotly")
    from testfleet.reporting.coverage_plot import coverage_figures

    names = ["python", "os", "database", "workers"]
    report = measure([2, 2, 2, 2], NIST_ROWS)
    failed = np.array([True, False, False, True])
    counts, fails = pair_counts([2, 2, 2, 2], NIST_ROWS, 0, 1, failed=failed)
    detail = {"a": "python", "b": "os", "a_labels": ["3.11", "3.12"], "b_labels": ["linux", "mac"],
              "counts": counts.tolist(), "failed": fails.tolist()}
    plain = dict(detail, failed=None)
    return coverage_figures(report.to_dict(names), pair_matrix([2] * 4, NIST_ROWS), names,
                            pair_details=[detail, plain])


def test_html_has_every_figure_and_the_dimension_names(tmp_path):
    from testfleet.reporting.coverage_plot import write_html

    figures = _figures()
    assert len(figures) == 4
    detail_text = figures[2].data[0].text
    assert "never run" in detail_text[1][1] and "1 failed" in detail_text[0][0]
    target = tmp_path / "out" / "coverage.html"
    write_html(figures, target)
    page = target.read_text(encoding="utf-8")
    for name in ("python", "os", "database", "workers"):
        assert name in page
    assert page.count("Plotly.newPlot") == 4
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js is inline, not fetched
    assert len(page) > 1_000_000  # it carries plotly.js itself, so it opens offline
    assert [p.name for p in target.parent.iterdir()] == ["coverage.html"]  # no temp file left


def test_png_export_needs_a_browser(tmp_path, monkeypatch):
    from testfleet.reporting.coverage_plot import write_png

    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    with pytest.raises(UsageError, match="chromium"):
        write_png(_figures()[0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_png_is_a_real_png(tmp_path):
    pytest.importorskip("kaleido")
    from browser import chromium

    from testfleet.reporting.coverage_plot import write_png

    if chromium() is None:
        pytest.skip("no Chrome/Chromium binary and no apt-get as root to install one: "
                    "kaleido cannot render PNG here")
    target = tmp_path / "heatmap.png"
    write_png(_figures()[0], target)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
