"""testfleet.jsonable: one JSON-safe spelling for every document testfleet writes."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.jsonable import jsonable

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [np.float64("nan"), np.float32("inf"), np.float64(-1.5)])
scalars = (st.none() | st.booleans() | st.integers() | floats | st.text(max_size=5)
           | st.sampled_from([np.int64(7), np.bool_(False), dt.date(2024, 1, 1), b"hi"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.tuples(inner, inner)
                      | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["null", "text"]))
def test_any_value_becomes_strict_json(value, nonfinite) -> None:
    out = jsonable(value, nonfinite=nonfinite)
    text = json.dumps(out, allow_nan=False)  # strict JSON: no NaN or Infinity tokens
    assert json.loads(text) == out  # JSON types only: nothing changes on the way back


def test_non_finite_floats_are_null_by_default_and_their_spelling_on_request() -> None:
    value = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "np": np.float64("nan")}
    assert jsonable(value) == {"nan": None, "inf": None, "ninf": None, "np": None}
    assert jsonable(value, nonfinite="text") == {"nan": "nan", "inf": "inf", "ninf": "-inf",
                                                 "np": "nan"}
    assert jsonable([1.5, -0.0]) == [1.5, -0.0]  # finite floats are kept as they are


def test_numpy_tuples_keys_and_other_values() -> None:
    got = jsonable({1: (np.int64(3), np.bool_(True)), "a": np.array([1.0, np.inf]),
                    "d": dt.date(2024, 2, 1), "b": b"hi"})
    assert got == {"1": [3, True], "a": [1.0, None], "d": repr(dt.date(2024, 2, 1)),
                   "b": "b'hi'"}
    assert type(got["1"][0]) is int and type(got["1"][1]) is bool


def test_it_does_not_import_numpy() -> None:
    # the snapshot and config commands use it; they should not pay numpy's import for it
    code = ("import sys; from testfleet.jsonable import jsonable; "
            "assert jsonable({'x': (1, float('nan'))}) == {'x': [1, None]}; "
            "assert 'numpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
