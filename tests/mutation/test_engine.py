"""The worker's mutation engine: which proposals one execution gives (fired rules, neighbours of
a failure or an anomaly), their scores, the room the case's budget leaves, and that the same task
and outcome give the same proposals on any worker."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.mutation.engine import (
    Execution,
    ExploreTask,
    MutationEngine,
    failure_key,
    nearness,
)
from testfleet.space import Choice, Int, Permutation, Space

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

SPACE = Space({"size": Int(100, 1000, step=100), "cache": Choice(["off", "lru", "lfu"]),
               "order": Permutation(["a", "b", "c"])},
              ["not (cache == 'lfu' and size > 800)"])
BASELINE = {"size": 100, "cache": "off", "order": ["a", "b", "c"]}
RULES = {"rules": [
    {"mutation_name": "BigUnderLoad", "target_parameter": "size", "variation_type": "range",
     "min_value": 100, "max_value": 1000, "step_size": 100, "trigger_condition": "CPU_load > 80%",
     "priority": 3},
    {"mutation_name": "Caches", "target_parameter": "cache", "variation_type": "set",
     "values": ["lru", "lfu"]},
    {"mutation_name": "OnlyElsewhere", "target_parameter": "size", "variation_type": "set",
     "values": [500], "applies_to": ["other.py::*"]},
]}


def _engine() -> MutationEngine:
    engine = MutationEngine()
    engine.set_ruleset("rules.yaml", RULES)
    return engine


def _task(params: dict | None = None, room: int = 32, reference: dict | None = None,
          variant_id: str = "v1") -> ExploreTask:
    return ExploreTask(variant_id=variant_id, case_seed=11, baseline=dict(BASELINE),
                       params={**BASELINE, **(params or {})}, room=room, rulesets=("rules.yaml",),
                       reference=reference or {})


def _busy(cpu: float) -> dict:
    return {"sut.cpu_percent": {"mean": cpu, "max": cpu, "p95": cpu}}


def test_a_rule_fires_only_while_its_trigger_holds_and_records_what_it_read() -> None:
    engine = _engine()
    idle = engine.propose("t.py::test", SPACE, _task(), Execution(failed=False, telemetry=_busy(20)))
    assert {p["origin"] for p in idle} == {"rule:Caches"}  # no trigger: always; the other waits for load
    busy = engine.propose("t.py::test", SPACE, _task(), Execution(failed=False, telemetry=_busy(95)))
    fired = [p for p in busy if p["origin"] == "rule:BigUnderLoad"]
    assert len(fired) == 4 and all(p["params"]["cache"] == "off" for p in fired)  # only size changes
    assert fired[0]["provenance"]["trigger_values"] == {"CPU_load": 95}
    assert fired[0]["score"] == 2 + 0.5 * 3 and fired[0]["ruleset"] == "rules.yaml"
    assert not any(p["origin"] == "rule:OnlyElsewhere" for p in busy)  # applies_to another case
    assert engine.propose("t.py::test", SPACE, _task(), Execution(failed=False, telemetry={})) == idle


def test_a_failure_is_mutated_around_one_parameter_at_a_time() -> None:
    engine = MutationEngine()
    parent = {"size": 700, "cache": "lru", "order": ["c", "a", "b"]}
    found = engine.propose("t.py::test", SPACE, _task(parent), Execution(
        failed=True, fingerprint="t.py:3:AssertionError", message="too big: 700"))
    assert found and {p["origin"] for p in found} == {"mutation"}
    for p in found:
        changed = [k for k in SPACE.dimensions if p["params"][k] != parent[k]]
        assert changed == [p["provenance"]["changed"]]
        assert p["provenance"]["failure"] == failure_key("t.py:3:AssertionError", "too big: 700")
    # numbers are also tried halfway back to the baseline
    assert any(p["params"]["size"] == 400 for p in found)


def test_an_anomaly_against_the_case_reference_is_mutated_around_with_its_z() -> None:
    engine = MutationEngine()
    reference = {"sut.rss_mb": [100.0, 2.0, 4.0]}  # median, sigma, threshold
    quiet = engine.propose("t.py::test", SPACE, _task(reference=reference),
                           Execution(failed=False, telemetry={"sut.rss_mb": {"max": 104.0}}))
    assert quiet == []  # z = 2: not an anomaly, nothing failed, no rules
    loud = engine.propose("t.py::test", SPACE, _task(reference=reference),
                          Execution(failed=False, telemetry={"sut.rss_mb": {"max": 140.0}}))
    assert loud and {p["origin"] for p in loud} == {"anomaly"}
    assert loud[0]["provenance"]["metrics"] == ["sut.rss_mb"] and loud[0]["provenance"]["z"] == 20.0
    assert loud[0]["score"] == 3 + 1.0
    failed = engine.propose("t.py::test", SPACE, _task(reference=reference), Execution(
        failed=True, telemetry={"sut.rss_mb": {"max": 140.0}}))
    assert {p["score"] for p in failed} == {5.0}  # a failure that was also anomalous: 4 + 1


def test_nearness_reads_each_metric_on_its_statistic() -> None:
    reference = {"duration": [0.1, 0.01, 4.0], "http.latency_ms": [10.0, 1.0, 4.0]}
    summary = {"http.latency_ms": {"mean": 50.0, "p95": 12.0}}  # p95 is what counts for latency
    [(metric, value, z)] = nearness(reference, summary, 0.2)
    assert (metric, value) == ("duration", 0.2) and z == pytest.approx(10.0)
    assert nearness({}, summary, 0.2) == []  # no reference yet: nothing is an anomaly


@PROPERTY
@given(size=st.sampled_from(list(range(100, 1001, 100))), cache=st.sampled_from(["off", "lru", "lfu"]),
       failed=st.booleans(), cpu=st.floats(0, 200), room=st.integers(0, 40),
       variant=st.text(min_size=1, max_size=8))
def test_proposals_are_inside_the_space_new_best_first_within_room_and_reproducible(
        size: int, cache: str, failed: bool, cpu: float, room: int, variant: str) -> None:
    if cache == "lfu" and size > 800:
        size = 800
    parent = {"size": size, "cache": cache, "order": ["b", "a", "c"]}
    execution = Execution(failed=failed, fingerprint="f", message="m", telemetry=_busy(cpu))
    task = _task(parent, room=room, variant_id=variant)
    found = _engine().propose("t.py::test", SPACE, task, execution)
    assert found == _engine().propose("t.py::test", SPACE, task, execution)  # any worker, same answer
    assert len(found) <= room
    points = [repr(sorted(p["params"].items())) for p in found]
    assert len(set(points)) == len(points) and repr(sorted(parent.items())) not in points
    assert [p["score"] for p in found] == sorted((p["score"] for p in found), reverse=True)
    for p in found:
        assert all(SPACE.dimensions[k].contains(v) for k, v in p["params"].items())
        assert not SPACE.violations(p["params"])
