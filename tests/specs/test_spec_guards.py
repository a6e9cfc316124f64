"""Blow-up guards of the spec language: long ``given`` chains, and message patterns that a
backtracking engine would take minutes on (they run on RE2)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.tables import table_from_rows
from testfleet.specs import VIOLATED, ResultTable, SpecError, check, specs
from testfleet.patterns import PatternError, compile_pattern


def _table(message: str) -> ResultTable:
    return table_from_rows([{"variant_id": "v0", "nodeid": "t.py::test_a",
                                   "params": {"threads": 2}, "outcome": "failed",
                                   "duration": 0.1, "message": message}])


def test_given_of_3000_and_terms_is_read_and_checked() -> None:
    given_text = " and ".join(["threads == 2"] * 3000)
    (verdict,) = check(specs([{"id": "long", "given": given_text, "then": "passes"}]),
                       _table("boom"))
    assert verdict.matching == 1 and verdict.status == VIOLATED


def test_catastrophic_message_pattern_finishes_in_linear_time() -> None:
    # Python's re needs minutes for (a+)+$ against 40 a's and a '!'; RE2 answers at once.
    spec = specs([{"id": "redos", "then": {"message": "(a+)+$"}}])
    table = _table("a" * 40 + "!")
    out: list = []
    worker = threading.Thread(target=lambda: out.append(check(spec, table)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert out, "the message check was still running after 20 s"
    assert out[0][0].status == VIOLATED  # the message does not end in 'a'


@pytest.mark.parametrize("pattern", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_pattern_re2_cannot_run_is_refused_naming_the_field(pattern: str) -> None:
    with pytest.raises(SpecError) as info:
        specs([{"id": "x", "then": {"message": pattern}}])
    assert (info.value.place or "").startswith("specs[0] (x).then.message")
    assert "backreferences" in str(info.value) and "RE2" in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_pattern_compiles_or_is_a_pattern_error(text: str) -> None:
    try:
        pattern = compile_pattern(text)
    except PatternError as exc:
        assert str(exc)
    else:
        pattern.search("some message 123")
