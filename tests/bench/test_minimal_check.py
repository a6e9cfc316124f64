"""The 1-minimality check of bench/zoo/minimal_score.py: which variants count as one
simplification step from a minimal one (each is run, and none may still show the defect)."""

from __future__ import annotations

import sys
from pathlib import Path

ZOO = Path(__file__).resolve().parents[2] / "bench" / "zoo"
sys.path.insert(0, str(ZOO))

from minimal_check import single_steps  # noqa: E402

from testfleet.space import Choice, Int, Permutation, Space  # noqa: E402
from testfleet.space.composite import ListOf  # noqa: E402
from testfleet.space.text import String  # noqa: E402

SPACE = Space({"amount": Int(-1000, 2**40, default=1250), "memo": String(0, 20, default="coffee"),
               "currency": Choice(["EUR", "JPY"]), "order": Permutation(["get", "patch", "delete"]),
               "ops": ListOf(Choice(["put", "get"]), 0, 5)})
BASE = SPACE.baseline()


def steps(**changes: object) -> dict[str, dict]:
    return dict(single_steps(SPACE, BASE, {**BASE, **changes}))


def test_a_number_steps_back_to_the_baseline_and_one_grid_step_nearer() -> None:
    assert steps(amount=2**31) == {"amount back to baseline": {**BASE, "amount": 1250},
                                   "amount one step nearer": {**BASE, "amount": 2**31 - 1}}


def test_a_text_steps_by_deleting_or_plaining_one_character() -> None:
    found = steps(memo="e\u0301")
    assert found["memo without character 0"]["memo"] == "\u0301"
    assert found["memo without character 1"]["memo"] == "e"
    assert found["memo character 1 made plain"]["memo"] == "ea"
    assert "memo character 0 made plain" not in found  # 'e' is plain already


def test_a_choice_only_goes_back_and_the_unchanged_keys_do_not_move() -> None:
    assert list(steps(currency="JPY")) == ["currency back to baseline"]
    assert steps() == {}


def test_an_order_swaps_one_baseline_item_back_and_a_list_loses_one_element() -> None:
    found = steps(order=["patch", "get", "delete"], ops=["put", "get"])
    assert found["order: 'get' back in place 0"]["order"] == ["get", "patch", "delete"]
    assert found["ops without element 1"]["ops"] == ["put"]
    assert {k for k in found if k.startswith("ops")} == {"ops back to baseline", "ops without element 0",
                                                         "ops without element 1"}
