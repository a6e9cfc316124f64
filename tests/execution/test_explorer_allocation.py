"""The explorer's allocation between proposal sources (a Thompson-sampling bandit over their
measured yield), its rule accounting, and the order it dispatches proposals in, on synthetic
yields and outcomes: no processes."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.execution.allocation import PRIOR_WEIGHT, SourceBandit
from testfleet.execution.explorer import Budget, Explorer
from testfleet.execution.explorer_sources import config_key
from testfleet.model import Case, Outcome, Result, Variant
from testfleet.mutation.rules import loads_ruleset
from testfleet.space import Choice, Int, Space
from testfleet.space.declare import space_to_dict


def _simulate(yields: dict[str, float], pulls: int, seed: int) -> dict[str, int]:
    """Run the bandit against sources that reveal a new failure with the given chances."""
    bandit = SourceBandit(seed, priors={})
    world = np.random.default_rng(seed + 1)
    counts = dict.fromkeys(yields, 0)
    for _ in range(pulls):
        source = bandit.choose(yields)
        counts[source] += 1
        bandit.record(source, float(world.random() < yields[source]))
    return counts


def test_the_source_that_finds_most_gets_most_executions() -> None:
    counts = _simulate({"edge": 0.02, "random": 0.3, "pairwise": 0.05}, 300, seed=3)
    assert counts["random"] > counts["edge"] + counts["pairwise"]
    assert min(counts.values()) >= 3  # the others keep a chance


def test_sources_that_find_nothing_share_the_executions() -> None:
    counts = _simulate({"edge": 0.0, "random": 0.0, "pairwise": 0.0}, 300, seed=4)
    assert all(60 <= n <= 140 for n in counts.values()), counts


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.sampled_from(["a", "b", "c", "rule:x"]), min_size=1, max_size=4))
def test_a_seed_gives_the_same_choices_whatever_the_order_sources_are_listed(seed: int, sources: list[str]) -> None:
    one, two = SourceBandit(seed), SourceBandit(seed)
    for step in range(20):
        a, b = one.choose(sources), two.choose(list(reversed(sources)))
        assert a == b and a in sources
        one.record(a, step % 3 == 0)
        two.record(b, step % 3 == 0)


@given(st.lists(st.booleans(), max_size=50), st.floats(0.01, 0.99))
def test_the_posterior_mean_follows_the_evidence(outcomes: list[bool], prior: float) -> None:
    bandit = SourceBandit(0, priors={"s": prior})
    for found in outcomes:
        bandit.record("s", float(found))
    stats = bandit.source("s")
    expected = (prior * PRIOR_WEIGHT + sum(outcomes)) / (PRIOR_WEIGHT + len(outcomes))
    assert abs(stats.mean - expected) < 1e-9
    assert stats.executions == len(outcomes)


def test_no_source_no_choice() -> None:
    assert SourceBandit(1).choose([]) is None


# -- the explorer with the bandit --------------------------------------------------------------

SPACE = Space({"n": Int(0, 200), "sut.mode": Choice(["a", "b", "c"]), "sut.size": Int(1, 9)})


def _setup(seed: int, budget: int = 40, ruleset: str | None = None) -> tuple[Explorer, Variant]:
    case = Case.from_nodeid("t.py::test")
    baseline = Variant.of(case, SPACE.baseline())
    explorer = Explorer(Budget(executions=budget), seed, batch_size=4, ruleset_path=ruleset)
    explorer.register([{"nodeid": case.nodeid, "params": SPACE.baseline(), "space": space_to_dict(SPACE)}],
                      [case], [baseline])
    return explorer, baseline


def _result(variant: Variant, failed: bool, telemetry: dict | None = None) -> Result:
    return Result(run_id="r", variant_id=variant.variant_id, case_id=variant.case_id, nodeid="t.py::test",
                  outcome=Outcome.failed if failed else Outcome.passed, fingerprint="t.py:1:E",
                  message=f"E {variant.params['sut.mode']}" if failed else "", telemetry=telemetry or {})


def _drive(explorer: Explorer, baseline: Variant, oracle) -> list[Variant]:
    explorer.observe(0, baseline, _result(baseline, False))
    ran = []
    while explorer.active:
        batch = explorer.take()
        if not batch:
            break
        for _p, variant in batch:
            ran.append(variant)
            explorer.observe(0, variant, _result(variant, oracle(variant.params)))
    return ran


def test_the_same_seed_gives_the_same_order_of_proposals() -> None:
    def oracle(p):
        return p["n"] > 150 and p["sut.mode"] == "c"
    first = [v.variant_id for v in _drive(*_setup(7), oracle)]
    assert first == [v.variant_id for v in _drive(*_setup(7), oracle)]
    assert first != [v.variant_id for v in _drive(*_setup(8), oracle)]
    assert len(first) == 40 == len(set(first))


HOT_RULE = """
rules:
  - {mutation_name: Hot, target_parameter: n, variation_type: set, values: [7], trigger_condition: "CPU_load > 50"}
"""


def _config_changes(explorer: Explorer, baseline: Variant) -> tuple[int, int]:
    ran = _drive(explorer, baseline, lambda p: False)
    configs = [config_key({**SPACE.baseline(), **v.params}) for v in ran]
    return sum(1 for a, b in itertools.pairwise(configs) if a != b), len(ran)


def test_while_a_trigger_reads_telemetry_the_instance_config_stays_for_a_while(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HOT_RULE)
    changes, ran = _config_changes(*_setup(11, budget=200, ruleset=str(path)))
    # random points come in blocks of four sharing their configuration, and each batch is
    # grouped by it: far fewer restarts than one per variant
    assert changes < 0.6 * ran, (changes, ran)
    plain, ran = _config_changes(*_setup(11, budget=200))  # no trigger: every point its own
    assert plain > changes


def test_a_source_that_finds_new_failures_is_chosen_more() -> None:
    explorer, baseline = _setup(5, budget=120)
    ran = _drive(explorer, baseline, lambda p: p["n"] in (0, 1, 200, 199) or p["sut.size"] in (1, 9))
    stats = explorer.cases[0].bandit.stats
    assert sum(s.found for source, s in stats.items() if source.split(":")[0] == "edge") >= 1
    summary = explorer.summary()
    arms = summary["allocation"]["t.py::test"]
    assert sum(v["new_failures"] for source, v in arms.items() if source.split(":")[0] == "edge") >= 1
    assert summary["by_origin"]["edge"]["new_failures"] >= 1
    assert len(ran) == 120


RULES = """
rules:
  - {mutation_name: Hot, target_parameter: n, variation_type: set, values: [7, 8],
     trigger_condition: "CPU_load > 50"}
  - {mutation_name: Always, target_parameter: n, variation_type: set, values: [9]}
  - {mutation_name: Elsewhere, target_parameter: threads, variation_type: set, values: [2]}
  - {mutation_name: Disabled, target_parameter: n, variation_type: set, values: [3], enabled: false}
"""


def test_every_rule_shows_with_its_trigger_counts_or_why_it_never_fired(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    explorer, baseline = _setup(3, budget=12, ruleset=str(path))
    cpu = {"sut.cpu_percent": {"mean": 12.0, "max": 30.0, "p95": 25.0, "delta": 0.0, "count": 5}}
    explorer.observe(0, baseline, _result(baseline, False, cpu))
    explorer.take()
    explorer.flush()
    report = explorer.rules_report()
    assert set(report) == {"Hot", "Always", "Elsewhere", "Disabled"}
    assert report["Hot"]["evaluated"] == 1 and report["Hot"]["held"] == 0
    assert report["Hot"]["values_seen"] == {"CPU_load": "12"}
    assert "never held" in report["Hot"]["why"] and "CPU_load 12" in report["Hot"]["why"]
    assert report["Always"]["held"] == 1
    assert "'threads' is not a parameter" in report["Elsewhere"]["why"]
    assert report["Disabled"]["why"] == "disabled in the ruleset"


def test_a_trigger_on_telemetry_never_measured_says_so(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    explorer, baseline = _setup(3, budget=12, ruleset=str(path))
    explorer.observe(0, baseline, _result(baseline, False))
    explorer.take()
    report = explorer.rules_report()
    assert "never measured" in report["Hot"]["why"]
    ruleset = loads_ruleset(RULES)
    assert [r.mutation_name for r in ruleset] == list(report)


def test_a_rule_of_higher_priority_starts_with_more_of_the_executions() -> None:
    from testfleet.execution.allocation import rule_prior

    bandit = SourceBandit(2)
    bandit.set_prior("rule:urgent", rule_prior(3))
    bandit.set_prior("rule:plain", rule_prior(1))
    picks = [bandit.choose(["rule:urgent", "rule:plain"]) for _ in range(400)]
    assert picks.count("rule:urgent") > picks.count("rule:plain")
    assert rule_prior(3) > rule_prior(1) == bandit.priors["rule"]
