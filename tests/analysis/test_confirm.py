"""``--confirm``: each follow-up runs as a randomised two-arm experiment and gets a verdict."""

from __future__ import annotations

from typing import Any

from testfleet.analysis.confirm import Confirmation, confirm, judge
from testfleet.analysis.followups import FollowUp


def _proposal(expect: str, old: Any = "off", new: Any = "on") -> FollowUp:
    return FollowUp({"cache": new, "threads": 12}, "why", "v1", "cache", old, new, expect)


def test_undoing_a_condition_that_makes_the_failure_pass_is_confirmed() -> None:
    c = judge(Confirmation(_proposal("pass"), "t::c", True, [True] * 3, [False] * 3))
    assert c.verdict == "confirmed" and abs(c.p_value - 0.05) < 1e-9


def test_undoing_a_condition_that_changes_nothing_is_refuted() -> None:
    c = judge(Confirmation(_proposal("pass"), "t::c", True, [True] * 3, [True] * 3))
    assert c.verdict == "refuted"


def test_a_base_that_does_not_reproduce_is_inconclusive() -> None:
    c = judge(Confirmation(_proposal("pass"), "t::c", True, [True, False, False], [False] * 3))
    assert c.verdict == "inconclusive"


def test_a_value_that_should_not_fail_alone_but_does_is_refuted() -> None:
    # the rule says the combination is to blame: this value alone should pass like the base
    alone = _proposal("pass", old="on", new="off")
    assert judge(Confirmation(alone, "t::c", False, [False] * 3, [True] * 3)).verdict == "refuted"
    assert judge(Confirmation(alone, "t::c", False, [False] * 3, [False] * 3)).verdict == "confirmed"


def test_arms_run_interleaved_in_a_seeded_order_and_unrunnable_cases_are_said() -> None:
    calls: list[tuple[str, str]] = []

    def runner(nodeid: str, params: dict[str, Any]) -> bool | None:
        calls.append((nodeid, params["cache"]))
        if nodeid == "t::plain":
            return None      # ran other values: the case takes no parameters from a space
        return params["cache"] == "off"

    plans = [(_proposal("pass"), "t::c", True), (_proposal("pass"), "t::plain", True)]
    found = confirm(plans, runner, seed=5)
    assert [c.verdict for c in found] == ["confirmed", "not runnable"]
    assert found[0].base == [True] * 3 and found[0].changed == [False] * 3
    ran = [arm for nodeid, arm in calls if nodeid == "t::c"]
    assert sorted(ran) == ["off"] * 3 + ["on"] * 3 and ran != sorted(ran)
    first = list(calls)
    calls.clear()
    confirm(plans, runner, seed=5)
    assert calls == first
