"""Minimisation of failing variants: delta debugging over parameter changes, numeric bisection
toward the baseline, orders and lists; the execution budget, the cache and undecided answers.

Known answers are written out by hand; Hypothesis draws monotone failures ("fails when these
culprits are changed and their numbers are past these thresholds") over random int, float,
bool and choice parameters and checks the result fails, is 1-minimal, names only the culprits,
puts every numeric culprit on its threshold and is the same on a second run.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.mutation.minimize import (
    ABSENT,
    Minimized,
    canonical_key,
    changed,
    ddmin,
    minimize,
)
from testfleet.space import (
    MISSING,
    Bool,
    Choice,
    Float,
    Int,
    ListOf,
    Permutation,
    Size,
    Space,
)


class Recorder:
    """A predicate that remembers every candidate it was asked about."""

    def __init__(self, predicate: Any) -> None:
        self.predicate = predicate
        self.calls: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any]) -> bool | None:
        self.calls.append(dict(params))
        return self.predicate(params)

    def keys(self) -> Counter[str]:
        return Counter(canonical_key(c) for c in self.calls)


SIX_BASE = {name: "off" for name in "abcdef"}
SIX_FAIL = {name: "on" for name in "abcdef"}


def test_two_of_six_changes_are_found() -> None:
    check = Recorder(lambda p: p["c"] == "on" and p["e"] == "on")
    result = minimize(SIX_BASE, SIX_FAIL, check)
    assert result.changes == {"c": ("off", "on"), "e": ("off", "on")}
    assert result.params == {**SIX_BASE, "c": "on", "e": "on"}
    assert result.complete
    assert result.executions == len(check.calls) == len(result.steps)
    assert max(check.keys().values()) == 1  # no candidate ran twice


def test_nothing_changed_needs_no_execution() -> None:
    result = minimize(SIX_BASE, dict(SIX_BASE), lambda p: True)
    assert result.changes == {} and result.executions == 0 and result.complete


def test_int_threshold_stays_on_the_declared_grid() -> None:
    space = Space(size=Int(100, 1000, step=100), mode=Choice(["a", "b"]))
    check = Recorder(lambda p: p["size"] > 700)
    result = minimize({"size": 100, "mode": "a"}, {"size": 1000, "mode": "b"}, check,
                      space=space)
    assert result.params == {"size": 800, "mode": "a"}
    assert result.changes == {"size": (100, 800)}
    assert all(c["size"] % 100 == 0 for c in check.calls)


def test_int_threshold_without_a_space_uses_unit_steps() -> None:
    result = minimize({"size": 100}, {"size": 1000}, lambda p: p["size"] > 700)
    assert result.params == {"size": 701}


def test_threshold_below_the_baseline_is_approached_from_above() -> None:
    result = minimize({"n": 50}, {"n": -40}, lambda p: p["n"] < -7)
    assert result.params == {"n": -8}


def test_size_dimension_is_numeric() -> None:
    space = Space(buffer=Size("1KB", "1MB"))
    result = minimize({"buffer": 1024}, {"buffer": 1024**2},
                      lambda p: p["buffer"] >= 300_000, space=space)
    assert result.params == {"buffer": 300_000}


def test_float_threshold_converges_within_tolerance() -> None:
    space = Space(jitter_ms=Float(0, 500))
    result = minimize({"jitter_ms": 0.0}, {"jitter_ms": 500.0},
                      lambda p: p["jitter_ms"] > 123.456, space=space)
    value = result.params["jitter_ms"]
    assert 123.456 < value <= 123.456 + 1e-6 * 500
    coarse = minimize({"jitter_ms": 0.0}, {"jitter_ms": 500.0},
                      lambda p: p["jitter_ms"] > 123.456, space=space, tolerance=1.0)
    assert 123.456 < coarse.params["jitter_ms"] <= 124.456
    assert coarse.executions < result.executions


def test_failure_caused_by_an_absent_key() -> None:
    baseline = {"threads": 4, "cache": "lru", "debug": False}
    failing = {"threads": 4, "debug": True, "extra": 1}
    result = minimize(baseline, failing, lambda p: "cache" not in p)
    assert result.changes == {"cache": ("lru", MISSING)}
    assert result.params == {"threads": 4, "debug": False}
    assert result.to_dict()["changes"] == {"cache": ["lru", ABSENT]}


def test_failure_caused_by_a_key_that_is_only_in_the_failing_variant() -> None:
    result = minimize({"a": 1}, {"a": 2, "trace": "on"}, lambda p: p.get("trace") == "on")
    assert result.changes == {"trace": (MISSING, "on")}
    assert result.to_dict()["changes"] == {"trace": [ABSENT, "on"]}


def test_permutation_keeps_only_the_pair_order_that_matters() -> None:
    items = ["a", "b", "c", "d", "e"]
    space = Space(order=Permutation(items))

    def fails(p: dict[str, Any]) -> bool:
        return p["order"].index("d") < p["order"].index("b")

    for given_space in (space, None):
        result = minimize({"order": items}, {"order": list(reversed(items))}, fails,
                          space=given_space)
        order = result.params["order"]
        assert fails(result.params)
        assert order == ["a", "d", "c", "b", "e"]
        assert sum(x != y for x, y in zip(order, items, strict=True)) == 2


def test_list_is_shortened_toward_the_baseline_length() -> None:
    space = Space(ops=ListOf(Int(0, 9), 0, 8))
    result = minimize({"ops": [0, 1]}, {"ops": [0, 1, 2, 3, 4, 5, 6]},
                      lambda p: 4 in p["ops"], space=space)
    assert 4 in result.params["ops"] and len(result.params["ops"]) == 2
    single = minimize({}, {"ops": [5, 7, 9, 4, 1]}, lambda p: 4 in p.get("ops", []))
    assert single.params == {"ops": [4]}


def test_space_invalid_candidates_are_not_executed() -> None:
    space = Space(a=Int(0, 10), b=Int(0, 10), constraints=["a <= b"])
    check = Recorder(lambda p: p["a"] >= 5)
    result = minimize({"a": 0, "b": 0}, {"a": 8, "b": 9}, check, space=space)
    assert all(space.is_valid(c) for c in check.calls)
    assert result.params == {"a": 5, "b": 5}
    unconstrained = minimize({"a": 0, "b": 0}, {"a": 8, "b": 9}, lambda p: p["a"] >= 5)
    assert unconstrained.params == {"a": 5, "b": 0}


def test_budget_is_respected_and_the_best_so_far_returned() -> None:
    baseline = {f"p{i}": 0 for i in range(12)}
    failing = {f"p{i}": 1000 for i in range(12)}

    def fails(p: dict[str, Any]) -> bool:
        return p["p3"] > 10 and p["p9"] > 500

    for budget in range(12):
        check = Recorder(fails)
        result = minimize(baseline, failing, check, max_tests=budget)
        assert result.executions == len(check.calls) <= budget
        assert not result.complete
        assert fails(result.params)
        assert set(result.changes) >= {"p3", "p9"}
    full = minimize(baseline, failing, fails)
    assert full.complete and full.params == {**baseline, "p3": 11, "p9": 501}
    assert full.executions <= 200


def test_undecided_answers_count_as_passes() -> None:
    def fails(p: dict[str, Any]) -> bool | None:
        if p["c"] == "on":
            return True if p["e"] == "on" else None  # c alone: crashed, cannot tell
        return False

    result = minimize(SIX_BASE, SIX_FAIL, fails)
    assert set(result.changes) == {"c", "e"}
    assert result.undecided >= 1
    assert result.undecided == sum(o is None for _, o in result.steps)


def test_to_dict_is_json_and_steps_are_provenance() -> None:
    check = Recorder(lambda p: p["c"] == "on")
    result = minimize(SIX_BASE, SIX_FAIL, check)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["params"] == {**SIX_BASE, "c": "on"}
    assert data["executions"] == len(data["steps"]) == len(check.calls)
    assert [s["params"] for s in data["steps"]] == check.calls
    assert isinstance(result, Minimized)


def test_changed_helper() -> None:
    assert changed({"a": 1, "b": True, "c": 3}, {"a": 1, "b": 1, "d": 4}) == {
        "b": (True, 1), "c": (3, MISSING), "d": (MISSING, 4)}


def test_ddmin_finds_a_one_minimal_subset() -> None:
    assert ddmin(list(range(10)), lambda s: {2, 7} <= set(s)) == [2, 7]
    assert ddmin([1], lambda s: True) == [1]


# -- Hypothesis properties ----------------------------------------------------------------------

@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    dims, baseline, failing, rules = {}, {}, {}, {}
    for i in range(count):
        name = f"p{i}"
        kind = draw(st.sampled_from(["int", "float", "bool", "choice"]))
        if kind == "int":
            lo, step, size = draw(st.integers(-50, 50)), draw(st.integers(1, 5)), \
                draw(st.integers(2, 300))
            dims[name] = Int(lo, lo + step * (size - 1), step)
            kb, kf = draw(st.lists(st.integers(0, size - 1), min_size=2, max_size=2,
                                   unique=True))
            b, f = lo + kb * step, lo + kf * step
            rules[name] = draw(st.integers(0, abs(f - b) - 1))
        elif kind == "float":
            dims[name] = Float(0, 1000)
            b = draw(st.floats(0, 1000))
            f = draw(st.floats(0, 1000).filter(lambda x, b=b: abs(x - b) > 1e-2))
            rules[name] = draw(st.floats(0, abs(f - b) * 0.999))
        elif kind == "bool":
            dims[name] = Bool()
            b = draw(st.booleans())
            f = not b
        else:
            dims[name] = Choice(["x", "y", "z"])
            b, f = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=2, max_size=2,
                                 unique=True))
        baseline[name], failing[name] = b, f
    culprits = draw(st.sets(st.sampled_from(sorted(baseline)), min_size=1))
    return {"space": Space(dims), "baseline": baseline, "failing": failing,
            "culprits": sorted(culprits), "rules": rules,
            "use_space": draw(st.booleans())}


def make_predicate(case: dict[str, Any]) -> Any:
    baseline, failing, rules = case["baseline"], case["failing"], case["rules"]

    def holds(name: str, value: Any) -> bool:
        if name not in rules:
            return value != baseline[name]
        direction = 1 if failing[name] > baseline[name] else -1
        return (value - baseline[name]) * direction > rules[name]

    return lambda p: all(holds(n, p[n]) for n in case["culprits"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_minimal_variant_properties(case: dict[str, Any]) -> None:
    fails = make_predicate(case)
    space = case["space"] if case["use_space"] else None
    check = Recorder(fails)
    result = minimize(case["baseline"], case["failing"], check, space=space, max_tests=2000)
    baseline = case["baseline"]

    assert result.complete
    assert fails(result.params)
    assert max(check.keys().values(), default=1) == 1
    assert result.executions == len(check.calls)
    assert set(result.changes) == set(case["culprits"])           # only (and all) culprits
    for name in result.changes:                                    # 1-minimal
        assert not fails({**result.params, name: baseline[name]})
    if space is not None:
        assert all(space.is_valid(c) for c in check.calls)
    for name, threshold in case["rules"].items():                  # on the boundary
        if name not in result.changes:
            continue
        dim, value = case["space"].dimensions[name], result.params[name]
        direction = 1 if case["failing"][name] > baseline[name] else -1
        if isinstance(dim, Int):
            step = dim.step if space is not None else 1
            assert dim.contains(value) or space is None
            assert not fails({**result.params, name: value - direction * step})
        else:
            assert (value - baseline[name]) * direction - threshold <= 1e-6 * 1000 + 1e-9

    again = minimize(case["baseline"], case["failing"], make_predicate(case), space=space,
                     max_tests=2000)
    assert again.to_dict() == result.to_dict()


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.integers(0, 30))
def test_budget_property(case: dict[str, Any], budget: int) -> None:
    fails = make_predicate(case)
    check = Recorder(fails)
    result = minimize(case["baseline"], case["failing"], check, max_tests=budget)
    assert result.executions == len(check.calls) <= budget
    assert fails(result.params)
    assert set(result.changes) >= set(case["culprits"])
