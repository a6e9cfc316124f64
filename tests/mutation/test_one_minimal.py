"""Minimisation ends 1-minimal: on small synthetic oracles ("fails iff x > T", "fails iff the
memo holds character C", "fails iff a == A and b == B", and their conjunctions with noise keys),
every single simplification step of the result passes, and the result is the one a person would
write down: exactly T + 1, a one-character memo, only the relevant keys.

Also: the value steps of :mod:`testfleet.mutation.shrink` on their own, and a minimisation job
that counts a candidate as failing only when it fails the same way."""

from __future__ import annotations

import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.mutation.minimize_job import MinimizeJob
from testfleet.mutation.minimize import minimize
from testfleet.mutation.shrink import PLAIN, landmarks, shrink_grid, shrink_text, simplest_between
from testfleet.space import Choice, Int, Permutation, Space
from testfleet.space.text import String

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def single_steps(baseline: dict[str, Any], params: dict[str, Any], space: Space):
    """Every point one simplification step away from ``params``: a key back to its baseline
    value, an integer one grid step toward it, a text with one character deleted or one special
    character made plain. Only points inside the space."""
    for name, value in params.items():
        old = baseline[name]
        if value == old:
            continue
        yield {**params, name: old}
        dim = space.dimensions[name]
        if isinstance(dim, Int) and value != old:
            yield {**params, name: value - dim.step if value > old else value + dim.step}
        if isinstance(value, str):
            for i in range(len(value)):
                yield {**params, name: value[:i] + value[i + 1:]}
                if value[i] not in PLAIN:
                    yield {**params, name: value[:i] + "a" + value[i + 1:]}


def assert_one_minimal(baseline: dict[str, Any], params: dict[str, Any], space: Space,
                       fails: Any) -> None:
    assert fails(params)
    for step in single_steps(baseline, params, space):
        if space.is_valid(step):
            assert not fails(step), step


NOISE = {"compression": Choice(["none", "zstd", "gzip"]), "workers": Int(1, 16),
         "cache": Choice(["off", "on"])}
NOISE_BASE = {"compression": "none", "workers": 4, "cache": "off"}
NOISE_FAIL = {"compression": "zstd", "workers": 9, "cache": "on"}


@PROPERTY
@given(st.integers(0, 2**40), st.one_of(st.integers(1, 2**40),
                                        st.sampled_from([2**31 - 1, 2**31, 2**32, 10**6, 99])),
       st.booleans())
def test_a_numeric_threshold_ends_exactly_one_past_it(span: int, threshold: int,
                                                      noise: bool) -> None:
    hi = threshold + 1 + span
    space = Space(amount=Int(0, hi), **NOISE)
    baseline = {"amount": 0, **NOISE_BASE}
    failing = {"amount": hi, **(NOISE_FAIL if noise else NOISE_BASE)}

    def fails(p: dict[str, Any]) -> bool:
        return p["amount"] > threshold

    result = minimize(baseline, failing, fails, space=space, max_tests=400)
    assert result.complete
    assert result.changes == {"amount": (0, threshold + 1)}
    assert_one_minimal(baseline, result.params, space, fails)


def test_an_int32_overflow_is_found_exactly_and_cheaply() -> None:
    space = Space(amount=Int(0, 10**12), **NOISE)
    baseline = {"amount": 100, **NOISE_BASE}
    result = minimize(baseline, {"amount": 5 * 10**9, **NOISE_FAIL},
                      lambda p: p["amount"] > 2**31 - 1, space=space)
    assert result.changes == {"amount": (100, 2147483648)}
    # the special values come first: far fewer than the 33 probes a plain bisection needs
    assert result.executions <= 16


@st.composite
def memos(draw: Any) -> tuple[str, str]:
    culprit = draw(st.sampled_from(["\u0301", "\x00", "\u202e", "\u200d", "\x1b", "é", "#"]))
    filler = draw(st.text(alphabet="abcxyz ,.-", min_size=0, max_size=1500))
    at = draw(st.lists(st.integers(0, len(filler)), min_size=1, max_size=3))
    text = filler
    for i in sorted(at, reverse=True):
        text = text[:i] + culprit + text[i:]
    return culprit, text


@PROPERTY
@given(memos(), st.booleans())
def test_a_memo_that_fails_for_one_character_ends_as_that_character(case: tuple[str, str],
                                                                   noise: bool) -> None:
    culprit, memo = case
    space = Space(memo=String(0, 2000), **NOISE)
    baseline = {"memo": "hello", **NOISE_BASE}
    failing = {"memo": memo, **(NOISE_FAIL if noise else NOISE_BASE)}

    def fails(p: dict[str, Any]) -> bool:
        return culprit in p["memo"]

    result = minimize(baseline, failing, fails, space=space, max_tests=400)
    assert result.complete
    assert result.changes == {"memo": ("hello", culprit)}
    assert_one_minimal(baseline, result.params, space, fails)


def test_a_long_memo_with_a_combining_mark_ends_as_the_mark() -> None:
    memo = ("lorem ipsum dolor " * 69)[:600] + "e\u0301" + ("sit amet " * 72)[:640]
    assert len(memo) == 1242
    space = Space(memo=String(0, 2000), **NOISE)
    baseline = {"memo": "hello", **NOISE_BASE}

    def fails(p: dict[str, Any]) -> bool:
        return any(unicodedata.combining(c) for c in p["memo"])

    result = minimize(baseline, {"memo": memo, **NOISE_FAIL}, fails, space=space)
    assert result.changes == {"memo": ("hello", "\u0301")}
    assert result.executions <= 40


def test_a_minimum_length_keeps_the_character_that_matters_and_plain_padding() -> None:
    space = Space(memo=String(3, 50))
    memo = "xyz\u0301 \u202e--##"

    def fails(p: dict[str, Any]) -> bool:
        return "\u0301" in p["memo"]

    result = minimize({"memo": "abc"}, {"memo": memo}, fails, space=space)
    value = result.params["memo"]
    assert len(value) == 3 and "\u0301" in value and all(c in PLAIN for c in value.replace("\u0301", ""))
    assert_one_minimal({"memo": "abc"}, result.params, space, fails)


@PROPERTY
@given(st.integers(2, 8), st.data())
def test_a_two_key_interaction_keeps_only_its_two_keys(count: int, data: Any) -> None:
    names = [f"k{i}" for i in range(count)]
    a, b = data.draw(st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True))
    space = Space({n: Choice(["x", "y", "z"]) for n in names})
    baseline = {n: "x" for n in names}
    failing = {n: data.draw(st.sampled_from(["y", "z"])) for n in names}
    want_a, want_b = failing[a], failing[b]

    def fails(p: dict[str, Any]) -> bool:
        return p[a] == want_a and p[b] == want_b

    result = minimize(baseline, failing, fails, space=space)
    assert result.changes == {a: ("x", want_a), b: ("x", want_b)}
    assert_one_minimal(baseline, result.params, space, fails)


@PROPERTY
@given(st.integers(1, 10**9), memos(), st.sampled_from(["zstd", "gzip"]))
def test_a_conjunction_of_a_threshold_a_character_and_a_key(threshold: int,
                                                            case: tuple[str, str],
                                                            compression: str) -> None:
    culprit, memo = case
    space = Space(amount=Int(0, 2 * 10**9), memo=String(0, 2000), **NOISE)
    baseline = {"amount": 0, "memo": "", **NOISE_BASE}
    failing = {"amount": 2 * 10**9, "memo": memo, **NOISE_FAIL, "compression": compression}

    def fails(p: dict[str, Any]) -> bool:
        return p["amount"] >= threshold and culprit in p["memo"] \
            and p["compression"] == compression

    result = minimize(baseline, failing, fails, space=space, max_tests=600)
    assert result.complete
    assert result.changes == {"amount": (0, threshold), "memo": ("", culprit),
                              "compression": ("none", compression)}
    assert_one_minimal(baseline, result.params, space, fails)


# -- the value steps on their own -------------------------------------------------------------

def test_landmarks_are_powers_of_two_and_ten_each_side() -> None:
    found = landmarks(100, 1100)
    assert {127, 128, 129, 255, 256, 257, 511, 512, 513, 999, 1000, 1001, 1023, 1024, 1025} \
        <= set(found)
    assert found == sorted(found) and all(100 < v < 1100 for v in found)
    assert -1 in landmarks(-5, 5) and 0 in landmarks(-5, 5)


def test_grid_search_stays_on_the_grid_and_finds_the_first_failing_value() -> None:
    asked: list[int] = []

    def probe(v: int) -> bool:
        asked.append(v)
        return v >= 2**31

    assert shrink_grid(probe, 0, 2**33, 0, 3, exact=True) == 3 * (-(-(2**31) // 3))
    assert all(v % 3 == 0 for v in asked) and len(asked) == len(set(asked))


def test_simplest_between_takes_the_shortest_decimal_inside() -> None:
    assert simplest_between(123.456, 123.4561) == 123.4561
    assert simplest_between(0.9, 1.3) == 1.0
    assert simplest_between(1.3, 0.85) == 1.0  # toward a higher baseline
    assert simplest_between(0.85, 1.3) == 1.0
    assert simplest_between(2147483646.5, 2147483648.25) == 2147483648.0
    assert simplest_between(5.0, 5.0000001) == 5.0000001


def test_text_shrinks_to_empty_when_empty_fails() -> None:
    assert shrink_text(lambda t: True, "anything at all") == ""


# -- failure identity on the fleet ------------------------------------------------------------

def test_a_job_counts_only_the_same_failure_as_failing() -> None:
    """An easier, different defect (cache=on fails elsewhere) must not be what the minimal
    variant shows: the job minimises the overflow it was given."""
    space = Space(amount=Int(0, 10**10), cache=Choice(["off", "on"]))
    job = MinimizeJob(base=0, case_id="c", nodeid="t.py::test", variant_id="v",
                      fingerprint="ledger.py:40:OverflowError",
                      baseline={"cache": "off", "amount": 1},  # cache alone is tried first
                      failing={"cache": "on", "amount": 5 * 10**9},
                      fixed={"seed": 3}, space=space, max_tests=100).start()
    while not job.done:
        params = job.pending(timeout=0.05)
        if params is None:
            continue
        assert params["seed"] == 3  # the case's fixed arguments travel with every candidate
        if params["amount"] > 2**31 - 1:
            job.answer(True, "ledger.py:40:OverflowError")
        elif params["cache"] == "on":
            job.answer(True, "ledger.py:12:KeyError")  # another defect
        else:
            job.answer(False, None)
    job.join(5)
    event = job.to_event()
    assert event["changes"] == {"amount": [1, 2147483648]}
    assert event["other_failures"] >= 1 and event["complete"]


def test_a_choice_value_is_never_shrunk_as_text() -> None:
    # "z" is a value too, but not a simpler form of "zstd": a choice's values are names
    space = Space(compression=Choice(["none", "zstd", "z", ""]))
    calls: list[dict[str, Any]] = []

    def fails(p: dict[str, Any]) -> bool:
        calls.append(p)
        return "z" in p["compression"]

    result = minimize({"compression": "none"}, {"compression": "zstd"}, fails, space=space)
    assert result.changes == {"compression": ("none", "zstd")} and calls == []


def test_a_text_that_fails_by_length_alone_shrinks_by_bisection() -> None:
    space = Space(memo=String(0, 2000))
    memo = "".join(chr(ord("a") + i % 26) for i in range(1500))
    calls: list[str] = []

    def fails(p: dict[str, Any]) -> bool:
        calls.append(p["memo"])
        return len(p["memo"]) >= 777

    result = minimize({"memo": "hi"}, {"memo": memo}, fails, space=space)
    assert result.params == {"memo": "a" * 777}
    assert result.executions == len(calls) <= 20  # ddmin over the characters takes hundreds
    assert_one_minimal({"memo": "hi"}, result.params, space, fails)


def drive(job: MinimizeJob, answer: Any) -> dict[str, Any]:
    while not job.done:
        params = job.pending(timeout=0.05)
        if params is not None:
            job.answer(*answer(params))
    job.join(5)
    return job.to_event()


def test_a_baseline_order_collected_as_text_does_not_keep_the_order_in_the_result() -> None:
    """The collected baseline held the order as its text; every candidate with it was outside
    the space and never ran, so an unchanged order stayed in the 'minimal' change."""
    items = ["get", "patch", "delete", "list"]
    space = Space({"order": Permutation(items), "sut.currency": Choice(["EUR", "JPY"])})
    job = MinimizeJob(base=0, case_id="c", nodeid="t.py::test", variant_id="v", fingerprint="f",
                      baseline={"order": str(items), "sut.currency": "EUR"},
                      failing={"order": items, "sut.currency": "JPY"},
                      fixed={}, space=space).start()
    event = drive(job, lambda p: (p["sut.currency"] == "JPY", "f"))
    assert event["changes"] == {"sut.currency": ["EUR", "JPY"]}


@PROPERTY
@given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
       st.sets(st.sampled_from("abcdefgh"), max_size=8))
def test_a_dict_value_keeps_only_the_keys_whose_change_matters(culprits: list[str], noise: set[str]) -> None:
    """A config block in one parameter: the keys the failure needs changed stay changed, every
    other key goes back to the baseline's value (or away, when the baseline lacks it)."""
    old = {k: 0 for k in "abcd"}
    new = {**old, **{k: 1 for k in [*culprits, *noise]}}

    def fails(p: dict[str, Any]) -> bool:
        return all(p["config"].get(k) == 1 for k in culprits)

    result = minimize({"config": old}, {"config": new}, fails, max_tests=400)
    assert result.complete
    assert result.params["config"] == {**old, **{k: 1 for k in culprits}}
