"""Specialisation's score and policy (pure), and the [tool.testfleet.specialise] table."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError, UsageError
from testfleet.execution.specialisation import (
    Observation,
    PolicyState,
    Score,
    SpecialiseSettings,
    aim,
    decide,
    release_all,
    score,
)
from testfleet.settings import load_settings

S = SpecialiseSettings(enabled=True)


def rows(n: int, *, cpu: float = 0.0, bad: int = 0, duration: float = 0.01) -> list[Observation]:
    return [Observation(duration, True, i < bad, cpu, 100.0) for i in range(n)]


def test_stress_or_failures_alone_score_nothing_both_together_do() -> None:
    assert score(rows(8, cpu=95.0), 0.01, S).value == 0.0  # busy and healthy
    assert score(rows(8, cpu=1.0, bad=8), 0.01, S).value < S.release  # failing, unstressed
    both = score(rows(8, cpu=95.0, bad=4), 0.01, S)
    assert both.cpu == 1.0 and both.yield_ == 0.5 and both.value == 0.5


def test_latency_and_memory_growth_are_stress_too() -> None:
    slow = score(rows(4, bad=4, duration=0.03), 0.01, S)  # 3x the fleet's median: past latency_ratio 2
    assert slow.latency == 1.0 and slow.value == 1.0
    growing = [Observation(0.01, True, True, 0.0, rss) for rss in (100.0, 110.0, 125.0)]
    assert score(growing, 0.01, S).mem == pytest.approx(0.25 / 0.5)


def high(value: float = 0.8) -> Score:
    return Score(1.0, value, 1.0, 0.0, 0.0)


def test_a_grant_needs_confirm_results_in_a_row_and_is_the_highest_score_within_the_limit() -> None:
    state = PolicyState()
    scores = {"a": high(0.6), "b": high(0.9), "c": high(0.1)}
    assert decide(state, scores, {"a", "b", "c"}, "abc", S) == []  # once is not yet "in a row"
    # a score that did not get a new result does not count again
    assert decide(state, scores, set(), "abc", S) == []
    [grant] = decide(state, scores, {"a", "b", "c"}, "abc", S)
    assert (grant.action, grant.instance) == ("grant", "b")  # max_instances 1: the higher score
    assert "held at or above grant 0.3 for 2" in grant.reason and "yield 0.90" in grant.reason


def test_hysteresis_a_score_between_release_and_grant_keeps_the_grant() -> None:
    state = PolicyState()
    for _ in range(2):
        out = decide(state, {"a": high()}, {"a"}, ["a"], S)
    assert [d.action for d in out] == ["grant"]
    middle = {"a": high(0.2)}  # below grant 0.3, above release 0.1
    for _ in range(10):
        assert decide(state, middle, {"a"}, ["a"], S) == []
    low = {"a": high(0.0)}
    changes = [d for _ in range(3) for d in decide(state, low, {"a"}, ["a"], S)]
    assert [(d.action, d.instance) for d in changes] == [("release", "a")]
    assert "below release 0.1 for 2" in changes[0].reason


def test_an_idle_or_gone_instance_gives_its_resources_back_and_is_not_granted_again_unseen() -> None:
    quick = SpecialiseSettings(enabled=True, idle=3, cooldown=0)
    state = PolicyState()
    decide(state, {"a": high()}, {"a"}, ["a", "b"], quick)
    assert decide(state, {"a": high()}, {"a"}, ["a", "b"], quick)[0].action == "grant"
    out = [d for _ in range(3) for d in decide(state, {"a": high(), "b": high(0.0)}, {"b"}, ["a", "b"], quick)]
    assert [(d.action, d.reason.split(":")[0]) for d in out] == [("release", "idle")]
    for _ in range(5):  # its old score does not win it back while it has no new result
        assert decide(state, {"a": high(), "b": high(0.0)}, {"b"}, ["a", "b"], quick) == []
    decide(state, {"a": high()}, {"a"}, ["a"], quick)
    decide(state, {"a": high()}, {"a"}, ["a"], quick)
    [gone] = decide(state, {"a": high()}, set(), [], quick)
    assert (gone.action, gone.reason) == ("release", "the instance is gone")


def test_release_all_empties_the_grants_with_the_reason() -> None:
    state = PolicyState(granted={"x": 1, "y": 2})
    out = release_all(state, {"x": high()}, "exploration is over")
    assert [(d.instance, d.reason) for d in out] == [("x", "exploration is over"), ("y", "exploration is over")]
    assert not state.granted


TABLE = st.fixed_dictionaries({}, optional={
    "enabled": st.one_of(st.booleans(), st.integers(), st.text("ab01. ", max_size=3)),
    "window": st.one_of(st.integers(-5, 2000), st.floats(allow_nan=False), st.text("ab01. ", max_size=3)),
    "grant": st.one_of(st.floats(-1, 2), st.integers(-1, 2)),
    "release": st.one_of(st.floats(-1, 2), st.integers(-1, 2)),
    "nice": st.one_of(st.integers(-5, 30), st.booleans()),
    "share": st.floats(-1, 2),
    "colour": st.integers(),
})


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


@settings(max_examples=40, deadline=None)
@given(TABLE)
def test_a_specialise_table_is_read_or_refused_naming_its_key(tmp_path_factory, table) -> None:
    folder: Path = tmp_path_factory.mktemp("s")
    (folder / "testfleet.toml").write_text("[specialise]\n" + "".join(
        f"{key} = {toml_value(value)}\n" for key, value in table.items()))
    try:
        read, _ = load_settings([], {}, cwd=folder)
    except SettingsError as exc:
        text = str(exc)
        assert isinstance(exc, UsageError)  # exit code 4 for testfleet run (errors.py)
        assert "testfleet.toml" in text and "[specialise" in text, text
        return
    got = read.specialise
    assert "colour" not in table
    for key, value in table.items():
        assert getattr(got, key) == value
    assert got.release < got.grant


def test_aiming_lays_the_granted_configuration_over_a_share_of_variants_within_the_constraints() -> None:
    import random

    params = {"clients": 3, "sut.mode": "plain", "sut.level": 1}
    target = {"mode": "batch", "level": 2, "codec": "utf8"}  # codec: not a dimension of this case
    dims = ["clients", "sut.mode", "sut.level"]
    assert aim(params, target, dims, 0.1, 0.75) == {"clients": 3, "sut.mode": "batch", "sut.level": 2}
    assert aim(params, target, dims, 0.9, 0.75) == params  # the coin said no
    assert aim(params, target, dims, 0.1, 0.75, lambda p: p["sut.level"] != 2) == params  # a constraint
    assert aim(params, target, ["clients"], 0.1, 0.75) == params  # the case does not explore the SUT
    rng = random.Random(3)
    aimed = sum(aim(params, target, dims, rng.random(), 0.75) != params for _ in range(400))
    assert 260 < aimed < 340  # about share of them
