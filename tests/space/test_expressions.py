"""The constraint expression language: grammar, units, null semantics, safety, error places,
and the vectorised ``evaluate_columns`` fast path against the exact per-point semantics.

Known truths are written out by hand; the property tests build random expressions from a small
grammar and compare the numpy path with ``holds`` evaluated on plain Python values (the values
a point carries once ``tolist()`` has turned a sampled column into a dict).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError
from testfleet.space.dimensions import Bool, Size
from testfleet.space.expressions import MISSING, Expression, parse

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def value(text: str, **env: object) -> object:
    return parse(text).evaluate(env)


def truth(text: str, **env: object) -> bool:
    return parse(text).holds(env)


# -- precedence and associativity ------------------------------------------------------------

BOOLS = (False, True)


def test_implication_is_right_associative() -> None:
    # left-associative (a -> b) -> c would be False for a = b = c = False
    assert truth("a -> b -> c", a=False, b=False, c=False) is True
    for a, b, c in itertools.product(BOOLS, repeat=3):
        right = (not a) or ((not b) or c)
        assert truth("a -> b -> c", a=a, b=b, c=c) is right
        assert truth("a => b => c", a=a, b=b, c=c) is right
        assert truth("(a -> b) -> c", a=a, b=b, c=c) is ((not ((not a) or b)) or c)


def test_implication_binds_looser_than_or_and_and() -> None:
    for a, b, c in itertools.product(BOOLS, repeat=3):
        assert truth("a or b -> c", a=a, b=b, c=c) is ((not (a or b)) or c)
        assert truth("a -> b and c", a=a, b=b, c=c) is ((not a) or (b and c))


def test_not_binds_tighter_than_and() -> None:
    assert truth("not a and b", a=False, b=False) is False  # not (a and b) would be True
    for a, b in itertools.product(BOOLS, repeat=2):
        assert truth("not a and b", a=a, b=b) is ((not a) and b)
        assert truth("!a && b", a=a, b=b) is ((not a) and b)
        assert truth("not not a", a=a) is a


def test_and_binds_tighter_than_or() -> None:
    assert truth("a or b and c", a=True, b=False, c=False) is True  # (a or b) and c: False
    for a, b, c in itertools.product(BOOLS, repeat=3):
        assert truth("a or b and c", a=a, b=b, c=c) is (a or (b and c))
        assert truth("a || b && c", a=a, b=b, c=c) is (a or (b and c))


def test_not_applies_to_a_whole_comparison() -> None:
    assert truth("not x > 3", x=5) is False
    assert truth("not x > 3", x=1) is True


@pytest.mark.parametrize("x", range(-1, 7))
def test_chained_comparisons_read_like_python(x: int) -> None:
    assert truth("1 < x <= 3", x=x) is (1 < x <= 3)  # not (1 < x) <= 3, which is always true
    assert truth("0 <= x < 5 != x", x=x) is (0 <= x < 5 != x)
    assert truth("3 >= x > 1", x=x) is (3 >= x > 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("2 + 3 * 4", 14),
    ("(2 + 3) * 4", 20),
    ("10 - 4 - 3", 3),
    ("100 / 8 / 5", 2.5),
    ("2 * 3 % 4", 2),
    ("7 // 2 * 2", 6),
    ("-7 // 2", -4),
    ("7 % -3", -2),
    ("-2 + 3", 1),
    ("-2 * -3", 6),
    ("- -2", 2),
    ("+4", 4),
    ("1.5 * 2", 3.0),
    ("2e3", 2000.0),
    (".5 + .25", 0.75),
    ("abs(-3) + max(1, 5, 2) - min(4, 2)", 6),
    ("len('abc') + len([1, 2])", 5),
    ("max([3, 9, 1])", 9),
])
def test_arithmetic_precedence_and_functions(text: str, expected: float) -> None:
    assert value(text) == expected


def test_arithmetic_binds_tighter_than_comparison() -> None:
    assert truth("threads + 1 > cpus * 2", threads=4, cpus=2) is True
    assert truth("threads + 1 > cpus * 2", threads=3, cpus=2) is False


def test_in_and_not_in_with_list_literals() -> None:
    assert truth("x in [1, 2, 3]", x=2) is True
    assert truth("x in [1, 2, 3]", x=4) is False
    assert truth("mode not in ['off', 'lru']", mode="lfu") is True
    assert truth("mode not in ['off', 'lru']", mode="off") is False
    assert truth("x in []", x=1) is False
    assert truth("x + 1 in [2, 3] and y not in [x]", x=1, y=2) is True
    assert truth("not x in [1]", x=1) is False
    assert value("[1, 'a', null]") == [1, "a", None]


@pytest.mark.parametrize(("text", "expected"), [
    ("'off'", "off"),
    ('"off"', "off"),
    (r"'it\'s'", "it's"),
    (r'"say \"hi\""', 'say "hi"'),
    (r"'a\\b'", "a\\b"),
    ("'a -> b and c'", "a -> b and c"),
    ("''", ""),
])
def test_string_literals_and_escapes(text: str, expected: str) -> None:
    assert value(text) == expected
    assert parse(text).names == frozenset()


def test_keywords_true_false_null() -> None:
    assert value("true") is True
    assert value("false") is False
    assert value("null") is None
    assert value("True and not False") is True
    assert value("None == null") is True
    assert parse("true or null").names == frozenset()


def test_dotted_and_backtick_names() -> None:
    expr = parse("db.pool_size >= 4 and `cache-size (MB)` < 10 and len(name) > 1")
    assert isinstance(expr, Expression)
    assert expr.names == frozenset({"db.pool_size", "cache-size (MB)", "name"})
    assert expr.holds({"db.pool_size": 4, "cache-size (MB)": 9, "name": "ab"}) is True
    assert expr.holds({"db.pool_size": 3, "cache-size (MB)": 9, "name": "ab"}) is False


@pytest.mark.parametrize(("text", "expected"), [
    ("64MB", 67108864),
    ("1KB", 1024),
    ("1kb", 1024),
    ("2KiB", 2048),
    ("1GB", 1024**3),
    ("1GiB", 1024**3),
    ("1TB", 1024**4),
    ("5B", 5),
    ("1.5KB", 1536),
    ("250ms", 0.25),
    ("10us", 10e-6),
    ("3ns", 3e-9),
    ("2s", 2.0),
    ("2m", 120.0),
    ("2min", 120.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
])
def test_size_and_duration_units(text: str, expected: float) -> None:
    assert value(text) == pytest.approx(expected, rel=1e-12)


def test_unit_literals_compare_with_plain_numbers() -> None:
    assert truth("64MB == 67108864") is True
    assert truth("250ms == 0.25") is True
    assert truth("cache_size <= 64MB", cache_size=64 * 1024**2) is True
    assert truth("cache_size <= 64MB", cache_size=64 * 1024**2 + 1) is False
    assert truth("timeout >= 1.5s", timeout=1.5) is True
    assert isinstance(value("64MB"), int)  # byte counts stay exact integers


# -- the issue's examples ----------------------------------------------------------------------

@pytest.mark.parametrize(("threads", "cpus", "expected"), [
    (4, 2, True), (5, 2, False), (1, 1, True), (0, 0, True), (3, 1, False), (16, 8, True),
])
def test_issue_example_threads_bounded_by_cpus(threads: int, cpus: int, expected: bool) -> None:
    expr = parse("threads <= cpus * 2")
    assert expr.names == frozenset({"threads", "cpus"})
    assert expr.holds({"threads": threads, "cpus": cpus}) is expected


@pytest.mark.parametrize(("cache", "size", "expected"), [
    ("off", 0, True), ("off", 64 * 1024**2, False), ("lru", 64 * 1024**2, True),
    ("lru", 0, True),
])
def test_issue_example_cache_off_means_no_cache_size(cache: str, size: int,
                                                     expected: bool) -> None:
    expr = parse("cache == 'off' -> cache_size == 0")
    assert expr.names == frozenset({"cache", "cache_size"})
    assert expr.holds({"cache": cache, "cache_size": size}) is expected


# -- null and missing ----------------------------------------------------------------------------

def test_ordered_comparison_with_null_is_false_not_an_error() -> None:
    for op in ("<", "<=", ">", ">="):
        assert value(f"x {op} 3", x=None) is False
        assert value(f"3 {op} x", x=None) is False
    assert truth("not (x > 3)", x=None) is True
    assert truth("x > 3", x=MISSING) is False


def test_equality_with_null() -> None:
    assert truth("x == null", x=None) is True
    assert truth("x == null", x=0) is False
    assert truth("x != null", x=0) is True
    assert truth("x == null or x > 3", x=None) is True
    assert truth("x == null or x > 3", x=5) is True
    assert truth("x == null or x > 3", x=2) is False


def test_present_distinguishes_a_missing_key_from_null() -> None:
    assert truth("present(x)", x=MISSING) is False
    assert truth("present(x)", x=None) is True
    assert truth("present(x)", x=0) is True
    assert truth("not present(x) or x > 3", x=MISSING) is True
    assert truth("not present(x) or x > 3", x=2) is False


def test_type_mismatch_makes_the_expression_undefined() -> None:
    assert value("x + 1 > 3", x=None) is None
    assert truth("x + 1 > 3", x=None) is False
    assert value("x / y > 1", x=1, y=0) is None
    assert truth("x / y > 1", x=1, y=0) is False
    assert truth("y != 0 and x / y > 1", x=1, y=0) is False  # short-circuit: no division


def test_reading_an_unknown_parameter_is_a_space_error() -> None:
    with pytest.raises(SpaceError) as info:
        parse("threads <= cpus * 2").evaluate({"threads": 1})
    assert "cpus" in str(info.value)
    assert info.value.expected == "a parameter of the space"


# -- safety: nothing is ever executed -----------------------------------------------------------

HOSTILE = [
    "__import__('os').system('x')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('f')",
    "open('f').read()",
    "eval('1 + 1')",
    "exec('x = 1')",
    "getattr(x, 'y')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "'abc'.upper()",
    "(1).real",
    "x.upper()",
    "lambda: 1",
    "lambda x: x",
    "x = 1",
    "a; b",
    "1; import os",
    "import os",
    "x[0]",
    "{}",
    "{'a': 1}",
    "f'{x}'",
    "x if y else z",
    "[x for x in y]",
    "x ** 2",
    "x := 1",
    "@x",
    "x # comment",
    "$x",
    "a b",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_refused_at_parse_time(text: str) -> None:
    with pytest.raises(SpaceError) as info:
        parse(text)
    assert info.value.expected


def test_refused_text_has_no_side_effect(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    attempts = [
        f"__import__('pathlib').Path('{target}').touch()",
        f"open('{target}', 'w')",
        f"__import__('os').system('touch {target}')",
    ]
    for text in attempts:
        with pytest.raises(SpaceError):
            parse(text)
    assert not target.exists()


def test_dotted_dunder_name_is_only_a_parameter_lookup() -> None:
    expr = parse("x.__class__ == 1")
    assert expr.names == frozenset({"x.__class__"})
    with pytest.raises(SpaceError):  # no attribute of x is read: the key is simply absent
        expr.evaluate({"x": 5})
    assert expr.holds({"x.__class__": 1}) is True


TOKENS = ["x", "y.z", "`q r`", "1", "2.5", "1e999", "64", "KB", "ms", "'s'", "'", '"', "`",
          "(", ")", "[", "]", ",", "+", "-", "*", "/", "//", "%", "<", "<=", "==", "!=", "->",
          "=>", "and", "or", "not", "in", "!", "&&", "||", "true", "null", "len", "present",
          "foo", ".", ";", ":", "=", "\\", "é", " ", "\t"]


@PROPERTY
@given(st.one_of(
    st.text(max_size=40),
    st.text(alphabet="xy01.()[]'\"`+-*/%<>=!&|, eE", max_size=30),
    st.lists(st.sampled_from(TOKENS), max_size=14).map("".join),
    st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join),
))
def test_parse_returns_an_expression_or_raises_space_error(text: str) -> None:
    try:
        expr = parse(text)
    except SpaceError as exc:
        assert exc.expected
        return
    assert isinstance(expr, Expression)
    assert expr.text == text
    assert all(isinstance(name, str) and name for name in expr.names)


# Robustness regressions: inputs a config file can contain that escape as non-SpaceErrors.

def test_parse_huge_number_with_unit_is_a_space_error() -> None:
    # BUG: _unit_value calls int(inf) for an overflowing size literal -> OverflowError
    with pytest.raises(SpaceError):
        parse("cache_size <= 1e999KB")


def test_parse_overlong_integer_literal_is_a_space_error() -> None:
    # BUG: int() of a literal over Python's 4300-digit limit raises ValueError
    with pytest.raises(SpaceError):
        parse("x < " + "9" * 5000)


@pytest.mark.parametrize("text", [
    "(" * 2000 + "x" + ")" * 2000,
    "-" * 3000 + "1",
    "not " * 3000 + "x",
], ids=["parentheses", "minus", "not"])
def test_parse_deeply_nested_expression_is_a_space_error(text: str) -> None:
    # BUG: the recursive-descent parser lets RecursionError escape
    with pytest.raises(SpaceError):
        parse(text)


# -- error messages name the column and what was expected -------------------------------------

@pytest.mark.parametrize(("text", "place", "expected_part"), [
    ("a + * b", "column 5", "a value"),
    ("threads <= cpus * 2 )", "column 21", "end of the expression"),
    ("(a > 1", "column 7", "')'"),
    ("a $ b", "column 3", "an expression"),
    ("a > 1 b", "column 7", "an operator"),
    ("x > 5XB", "column 5", "size unit"),
    ("timeout < 3fortnights", "column 11", "duration unit"),
    ("x > exec(1)", "column 5", "len"),
    ("[1, 2", "column 6", "']'"),
])
def test_errors_name_the_column_and_what_was_expected(text: str, place: str,
                                                      expected_part: str) -> None:
    with pytest.raises(SpaceError) as info:
        parse(text)
    assert info.value.place == place
    assert expected_part in info.value.expected
    assert place in str(info.value)


def test_unknown_unit_and_unknown_function_are_named() -> None:
    with pytest.raises(SpaceError) as unit:
        parse("x > 5XB")
    assert "'XB'" in unit.value.message
    with pytest.raises(SpaceError) as func:
        parse("sqrt(x) > 1")
    assert "'sqrt'" in func.value.message
    assert func.value.expected == "one of abs, len, max, min, present"


@pytest.mark.parametrize("text", ["", "   ", None, 5])
def test_empty_or_non_text_expression_is_refused(text: object) -> None:
    with pytest.raises(SpaceError):
        parse(text)  # type: ignore[arg-type]


# -- the vectorised fast path equals the exact semantics -----------------------------------------

COLUMNS = ("x", "y", "z")  # x, y integers (int64), z floats (float64)

_atom = st.one_of(st.sampled_from(COLUMNS), st.integers(-3, 3).map(str),
                  st.sampled_from(["0.5", "2.5", "0"]))


def _arith(division: bool) -> st.SearchStrategy[str]:
    ops = ["+", "-", "*", "/", "//", "%"] if division else ["+", "-", "*"]
    return st.recursive(_atom, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(ops), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda a: f"(-{a})"),
    ), max_leaves=5)


def _boolean(division: bool) -> st.SearchStrategy[str]:
    arith = _arith(division)
    cmp = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    comparison = st.one_of(
        st.tuples(arith, cmp, arith).map(" ".join),
        st.tuples(arith, cmp, arith, cmp, arith).map(" ".join),
    )
    leaf = st.one_of(comparison, arith)
    return st.recursive(leaf, lambda inner: st.one_of(
        inner.map(lambda a: f"not ({a})"),
        st.tuples(inner, st.sampled_from(["and", "or", "->"]), inner)
        .map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    ), max_leaves=4)


@st.composite
def _columns(draw: st.DrawFn, zeros: bool) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 8))
    ints = st.integers(-4, 4) if zeros else st.integers(-4, 4).filter(bool)
    floats = st.floats(-5, 5, allow_nan=False, allow_subnormal=False)
    if not zeros:
        floats = floats.filter(bool)
    return {
        "x": np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.int64),
        "y": np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.int64),
        "z": np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64),
    }


def _per_point(expr: Expression, columns: dict[str, np.ndarray]) -> list[bool]:
    n = len(next(iter(columns.values())))
    plain = {name: column.tolist() for name, column in columns.items()}
    return [expr.holds({name: plain[name][i] for name in plain}) for i in range(n)]


def _vectorised(expr: Expression, columns: dict[str, np.ndarray]) -> list[bool]:
    n = len(next(iter(columns.values())))
    out = expr.evaluate_columns(columns, n)
    assert out.dtype == bool and out.shape == (n,)
    return out.tolist()


@PROPERTY
@given(_boolean(division=True), _columns(zeros=True))
@example("(x / y) > 1", {"x": np.array([1]), "y": np.array([0]), "z": np.array([0.0])})
def test_evaluate_columns_agrees_with_holds(text: str, columns: dict[str, np.ndarray]) -> None:
    expr = parse(text)
    assert _vectorised(expr, columns) == _per_point(expr, columns), text


@PROPERTY
@given(_boolean(division=False), _columns(zeros=False))
def test_evaluate_columns_agrees_with_holds_without_division(
        text: str, columns: dict[str, np.ndarray]) -> None:
    expr = parse(text)
    assert _vectorised(expr, columns) == _per_point(expr, columns), text


def test_evaluate_columns_on_the_issue_examples() -> None:
    columns = {"threads": np.array([4, 5, 1, 3]), "cpus": np.array([2, 2, 1, 1]),
               "cache": np.array(["off", "off", "lru", "lru"], dtype=object),
               "cache_size": np.array([0, 64 * 1024**2, 64 * 1024**2, 0])}
    assert parse("threads <= cpus * 2").evaluate_columns(columns, 4).tolist() == \
        [True, False, True, False]
    assert parse("cache == 'off' -> cache_size == 0").evaluate_columns(columns, 4).tolist() == \
        [True, False, True, True]


def test_evaluate_columns_with_nulls_uses_sql_null_ordering() -> None:
    column = np.empty(4, dtype=object)
    column[:] = [None, 5, 1, MISSING]
    columns = {"x": column}
    assert parse("x > 3").evaluate_columns(columns, 4).tolist() == [False, True, False, False]
    assert parse("x == null").evaluate_columns(columns, 4).tolist() == [True, False, False, False]
    assert parse("present(x)").evaluate_columns(columns, 4).tolist() == [True, True, True, False]


def test_evaluate_columns_constant_expression_broadcasts() -> None:
    assert parse("1 < 2").evaluate_columns({}, 3).tolist() == [True, True, True]
    assert parse("64MB < 1KB").evaluate_columns({}, 2).tolist() == [False, False]


def test_evaluate_columns_division_by_zero_column_matches_holds() -> None:
    # BUG: the per-point fallback reads numpy scalars, and np.int64(1) / np.int64(0) is inf
    # (a RuntimeWarning), not ZeroDivisionError, so the undefined point is counted as valid.
    expr = parse("x / y > 1")
    columns = {"x": np.array([1, 4]), "y": np.array([0, 2])}
    assert expr.holds({"x": 1, "y": 0}) is False
    assert expr.evaluate_columns(columns, 2).tolist() == [False, True]


def test_evaluate_columns_does_not_wrap_int64_overflow() -> None:
    # BUG: numpy int64 arithmetic wraps silently (1TB * 2**24 == 2**64 -> 0), Python's does not
    expr = parse("buffer * workers > 0")
    sizes = Size("1KB", "1TB")
    columns = {"buffer": np.array([sizes.max]), "workers": np.array([2**24])}
    assert expr.holds({"buffer": sizes.max, "workers": 2**24}) is True
    assert expr.evaluate_columns(columns, 1).tolist() == [True]


def test_evaluate_columns_adds_booleans_like_python() -> None:
    # BUG: numpy's bool + bool is logical or (True + True == True), Python's is 2
    flags = Bool().sample(np.random.default_rng(0), 64)
    columns = {"a": flags, "b": np.ones(64, dtype=bool)}
    expr = parse("a + b == 2")
    assert expr.evaluate_columns(columns, 64).tolist() == _per_point(expr, columns)
    counted = parse("(x > 0) + (y > 0) >= 2")
    ints = {"x": np.array([1, 1, -1]), "y": np.array([1, -1, 1])}
    assert counted.evaluate_columns(ints, 3).tolist() == [True, False, False]
