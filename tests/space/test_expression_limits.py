"""Expressions cannot exhaust the stack: long and/or chains are flat, deep nesting and long
arithmetic chains are refused with one message, and any text parses or is a SpaceError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError
from testfleet.space import Int, Space
from testfleet.space.expressions import MAX_DEPTH, MAX_LENGTH, MAX_NESTING, parse


def test_constraint_of_1000_chained_plus_is_refused_naming_the_constraint() -> None:
    text = " + ".join(["a"] * 1000) + " > 0"
    with pytest.raises(SpaceError) as info:
        Space({"a": Int(0, 3)}, [text], source="space.yaml")
    assert "operations deep" in info.value.message
    assert info.value.place == "constraints[0]" and info.value.source == "space.yaml"


def test_2000_chained_and_terms_evaluate_per_point_and_per_column() -> None:
    expression = parse(" and ".join(f"a != {i + 10}" for i in range(2000)))
    assert expression.holds({"a": 1}) and not expression.holds({"a": 10})
    columns = {"a": np.array([1, 10, 2009, 2010])}
    assert expression.evaluate_columns(columns, 4).tolist() == [True, False, False, True]


def test_2000_chained_or_terms_evaluate() -> None:
    expression = parse(" or ".join(f"a == {i}" for i in range(2000)))
    assert expression.holds({"a": 1999}) and not expression.holds({"a": 2000})


@pytest.mark.parametrize("text", ["(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1),
                                  "not " * (MAX_NESTING + 1) + "a",
                                  "-" * (MAX_NESTING + 1) + "a",
                                  "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1)])
def test_nesting_past_the_limit_is_refused_at_its_column(text: str) -> None:
    with pytest.raises(SpaceError, match="nested more than") as info:
        parse(text)
    assert (info.value.place or "").startswith("column ")


def test_nesting_within_the_limit_is_read() -> None:
    assert parse("(" * MAX_NESTING + "a" + ")" * MAX_NESTING).holds({"a": 1})


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(SpaceError, match="too long"):
        parse("a" * (MAX_LENGTH + 1))


_ATOMS = st.sampled_from(["a", "b", "1", "2.5", "'x'", "true", "null", "`c-d`", "[1, 2]",
                          "len([1])", "64MB", "80%"])
_OPS = st.sampled_from([" and ", " or ", " -> ", " + ", " - ", " * ", " / ", " == ", " < ",
                        " in ", " not in ", " % "])


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    parts = [draw(_ATOMS)]
    for _ in range(draw(st.integers(0, 150))):
        prefix = draw(st.sampled_from(["", "", "not ", "-", "("]))
        parts.append(draw(_OPS))
        parts.append(prefix + draw(_ATOMS))
    text = "".join(parts)
    opened = text.count("(") - text.count(")")
    return text + ")" * max(opened, 0)


@settings(max_examples=300, deadline=None)
@given(_expressions())
def test_any_operator_soup_parses_and_evaluates_or_is_a_space_error(text: str) -> None:
    try:
        expression = parse(text)
    except SpaceError as exc:
        assert exc.message
        return
    env = {"a": 3, "b": 0, "c-d": 1}
    value = expression.evaluate(env)  # never raises for a well-typed env: undefined is None
    columns = {name: np.array([env[name]] * 2) for name in expression.names}
    per_column = expression.evaluate_columns(columns, 2)
    assert per_column.tolist() == [bool(value)] * 2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab()+-*!<=>&|[],` 'n0ot", max_size=200))
def test_any_text_parses_or_is_a_space_error(text: str) -> None:
    try:
        parse(text)
    except SpaceError:
        pass


def test_depth_limit_is_what_the_message_says() -> None:
    ok = " + ".join(["a"] * (MAX_DEPTH - 2)) + " > 0"
    assert parse(ok).holds({"a": 1})


# ---------------------------------------------------------------- names holding '-' (issue 15, 18)

REDIS = {"io-threads": Int(1, 8), "io-threads-do-reads": Int(0, 1), "maxmemory": Int(0, 9),
         "maxmemory-policy": Int(0, 3)}


def test_dashed_names_unquoted_are_explained_with_the_backtick_fix() -> None:
    with pytest.raises(SpaceError) as info:
        Space(REDIS, ["io-threads == 1 -> io-threads-do-reads == 0"], source="redis.yaml")
    message = info.value.message
    assert "`io-threads`" in message and "`io-threads-do-reads`" in message
    assert "'-' is subtraction" in message and "which is not a parameter" not in message


def test_an_exact_parameter_name_is_never_offered_as_its_own_correction() -> None:
    with pytest.raises(SpaceError) as info:
        Space(REDIS, ["maxmemory-policy == 1 -> maxmemory > 0"], source="redis.yaml")
    assert "did you mean" not in info.value.message and "`maxmemory-policy`" in info.value.message


def test_dashed_names_in_backticks_work() -> None:
    space = Space(REDIS, ["`io-threads` == 1 -> `io-threads-do-reads` == 0"])
    assert space.constraints[0].names == {"io-threads", "io-threads-do-reads"}


def test_unknown_name_lists_every_parameter_or_says_how_many_more() -> None:
    few = {f"p{i}": Int(0, 1) for i in range(5)}
    with pytest.raises(SpaceError) as info:
        Space(few, ["q > 0"])
    assert info.value.expected == "one of p0, p1, p2, p3, p4"
    many = {f"p{i}": Int(0, 1) for i in range(30)}
    with pytest.raises(SpaceError) as info:
        Space(many, ["q > 0"])
    assert info.value.expected.endswith("p19 (and 10 more)")
