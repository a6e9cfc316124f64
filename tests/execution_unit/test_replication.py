"""The replication classifier: what a failure's replays say about it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import testfleet.analysis.flaky  # noqa: F401 - imported by classify on first use; not timed in a deadline
from testfleet.errors import SettingsError
from testfleet.execution.replication import (
    CONFIG_SPECIFIC,
    DETERMINISTIC,
    ENVIRONMENT_SPECIFIC,
    FLAKY,
    Execution,
    ReplicateSettings,
    classify,
    neighbour_configs,
)
from testfleet.settings import load_settings
from testfleet.space.declare import space_from_dict

WORKERS = st.sampled_from(["gw0", "gw1", "gw2", "gw3"])
CONFIGS = st.fixed_dictionaries({"mode": st.sampled_from(["a", "b", "c"]), "threads": st.integers(1, 4),
                                 "cache": st.booleans()})
FEW = settings(max_examples=40, deadline=None)  # the properties are simple; the suite's time is not
PLACES = st.lists(st.tuples(WORKERS, CONFIGS), min_size=1, max_size=12)


def env(worker: str) -> dict[str, str]:
    return {"worker": worker, "hostname": "box", "python": "3.12"}


@FEW
@given(PLACES, WORKERS, CONFIGS)
def test_a_failure_seen_everywhere_is_deterministic(places, worker, config) -> None:
    verdict = classify(Execution(True, env(worker), config), [Execution(True, env(w), c) for w, c in places])
    assert verdict.kind == DETERMINISTIC
    assert verdict.failures == verdict.executions == len(places) + 1 and verdict.rate == 1.0


@FEW
@given(st.data(), st.sampled_from(["mode", "threads", "cache"]), WORKERS, CONFIGS)
def test_a_failure_tied_to_one_config_value_is_configuration_specific_and_names_that_key(
        data, key, worker, failing) -> None:
    def bad(config):
        return config[key] == failing[key]

    # the failing worker under other configs (one factor at a time), and other workers
    # under configs of their own: the outcome depends on `key` only
    others = data.draw(st.lists(CONFIGS, min_size=1, max_size=6))
    far = data.draw(st.lists(st.tuples(WORKERS, CONFIGS), max_size=6))
    replays = [Execution(bad(c), env(worker), c) for c in others] + [Execution(bad(c), env(w), c) for w, c in far]
    if all(bad(c) for c in others):  # no replay on this worker passed: nothing to compare
        return
    verdict = classify(Execution(True, env(worker), failing), replays)
    assert verdict.kind == CONFIG_SPECIFIC
    assert key in verdict.keys
    # every key named differs between a failing and a passing configuration of this worker
    mine = [failing, *others, *(c for w, c in far if w == worker)]
    assert all(any(f[k] != p[k] for f in mine if bad(f) for p in mine if not bad(p)) for k in verdict.keys)


@FEW
@given(WORKERS, st.lists(WORKERS, min_size=1, max_size=6), CONFIGS, st.lists(CONFIGS, max_size=4))
def test_a_failure_only_on_one_worker_is_environment_specific_naming_the_worker(
        broken, workers, config, configs) -> None:
    replays = [Execution(w == broken, env(w), config) for w in workers]
    replays += [Execution(True, env(broken), c) for c in configs]  # any config fails on that worker
    if all(w == broken for w in workers):
        return
    verdict = classify(Execution(True, env(broken), config), replays)
    assert verdict.kind == ENVIRONMENT_SPECIFIC
    assert verdict.keys == ["worker"]
    assert verdict.differences["worker"]["failing"] == [broken]
    assert broken not in verdict.differences["worker"]["passing"]


@FEW
@given(WORKERS, CONFIGS, st.lists(st.booleans(), min_size=1, max_size=10), PLACES)
def test_a_cell_that_both_failed_and_passed_is_flaky_with_a_rate_inside_its_interval(
        worker, config, repeats, elsewhere) -> None:
    if all(repeats):
        repeats = [*repeats, False]
    replays = [Execution(b, env(worker), config) for b in repeats]
    replays += [Execution(i % 2 == 0, env(w), c) for i, (w, c) in enumerate(elsewhere)]
    verdict = classify(Execution(True, env(worker), config), replays)
    assert verdict.kind == FLAKY
    low, high = verdict.interval
    assert 0.0 <= low <= verdict.rate <= high <= 1.0
    assert verdict.rate == pytest.approx(verdict.failures / verdict.executions)


@FEW
@given(WORKERS, CONFIGS, st.lists(st.tuples(st.booleans(), WORKERS, CONFIGS), min_size=1, max_size=8),
       st.randoms(use_true_random=False))
def test_the_class_does_not_depend_on_the_order_the_replays_came_back(worker, config, rows, rnd) -> None:
    replays = [Execution(b, env(w), c) for b, w, c in rows]
    shuffled = list(replays)
    rnd.shuffle(shuffled)
    original = Execution(True, env(worker), config)
    assert classify(original, replays) == classify(original, shuffled)


def test_a_failure_on_one_worker_under_one_config_only_names_both() -> None:
    failing = {"mode": "b"}
    verdict = classify(Execution(True, env("gw1"), failing),
                       [Execution(True, env("gw1"), failing), Execution(False, env("gw0"), failing),
                        Execution(False, env("gw1"), {"mode": "a"})])
    assert verdict.kind == ENVIRONMENT_SPECIFIC
    assert verdict.keys == ["worker", "mode"]
    assert "fails with gw1, passes with gw0" in verdict.describe()


def test_neighbours_change_one_key_each_then_give_the_baseline() -> None:
    space = space_from_dict({"dimensions": {"sut.mode": {"type": "choice", "values": ["a", "b", "c"], "default": "a"},
                                            "sut.threads": {"type": "int", "min": 1, "max": 8, "default": 2}},
                             "constraints": []})
    point = {"sut.mode": "c", "sut.threads": 8}
    near = neighbour_configs(space, point, limit=4)
    assert near[0] == {"sut.mode": "a", "sut.threads": 8}  # the baseline value of the key
    assert near[1] == {"sut.mode": "c", "sut.threads": 2}
    assert near[-1] == {"sut.mode": "a", "sut.threads": 2}  # the baseline configuration
    at_baseline = neighbour_configs(space, {"sut.mode": "a", "sut.threads": 2}, limit=4)
    assert {"sut.mode": "a", "sut.threads": 2} not in at_baseline
    assert all(sum(p[k] != v for k, v in {"sut.mode": "a", "sut.threads": 2}.items()) == 1 for p in at_baseline)


@FEW
@given(st.one_of(st.none(), st.integers(0, 50)), st.one_of(st.none(), st.booleans()),
       st.one_of(st.none(), st.sampled_from(["40", "90s"])))
def test_the_budget_is_on_during_explore_and_when_given(budget, enabled, explore) -> None:
    resolved = ReplicateSettings(budget=budget, enabled=enabled).resolved_budget(explore)
    if enabled is False or (enabled is None and explore is None and budget is None):
        assert resolved == 0
    elif budget is not None:
        assert resolved == budget
    elif explore == "40":
        assert resolved == 10  # a quarter of the explore count
    else:
        assert resolved > 0


def test_a_bad_replicate_table_names_the_key(tmp_path) -> None:
    (tmp_path / "testfleet.toml").write_text("[replicate]\nrepeats = -1\n")
    with pytest.raises(SettingsError, match="replicate.repeats"):
        load_settings([], {}, cwd=tmp_path)
    (tmp_path / "testfleet.toml").write_text("[replicate]\nbudget = 7\n")
    settings, _ = load_settings([], {"replicate_budget": 3}, cwd=tmp_path)
    assert settings.replicate.budget == 3
    with pytest.raises(SettingsError, match="--replicate-budget"):
        load_settings([], {"replicate_budget": -2}, cwd=tmp_path)


def test_a_replay_pinned_to_a_worker_goes_to_that_worker_only_and_first() -> None:
    from testfleet.execution.scheduler import Scheduler

    scheduler = Scheduler(["t::a", "t::b", "t::c"], workers=2)
    pinned = scheduler.pin(0, "gw1")
    assert pinned == 3 and len(scheduler) == 4
    assert pinned not in scheduler.next_batch("gw0", alive=2)
    assert scheduler.next_batch("gw1", alive=2)[0] == pinned
    other = scheduler.pin(1, "gw0")
    scheduler.cancel()
    assert scheduler.empty
    gone = scheduler.pin(2, "gw2")
    assert not scheduler.empty and not scheduler.pool_empty("")
    assert scheduler.unpin("gw2") == [gone] and scheduler.empty and other == 4


def test_a_key_only_another_workers_pair_changed_is_not_named() -> None:
    # Hypothesis found it: gw1's failing run also had cache on, so its closest pair differs in
    # mode and cache, while gw0's differs in mode and threads. Only mode explains both.
    failing = {"mode": "b", "threads": 2, "cache": False}
    replays = [Execution(False, env("gw0"), {"mode": "a", "threads": 1, "cache": False}),
               Execution(False, env("gw1"), {"mode": "a", "threads": 2, "cache": False}),
               Execution(True, env("gw1"), {"mode": "b", "threads": 2, "cache": True})]
    verdict = classify(Execution(True, env("gw0"), failing), replays)
    assert verdict.kind == CONFIG_SPECIFIC and verdict.keys == ["mode"]
    assert verdict.differences["mode"] == {"failing": ["b"], "passing": ["a"]}
