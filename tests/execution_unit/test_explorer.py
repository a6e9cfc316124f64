"""The explorer's pure parts: budgets, the scheduler growing with explored variants, and the
batch contract that makes a seed's variant stream independent of which worker finished first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testfleet.errors import UsageError
from testfleet.execution.explorer import Budget, Explorer
from testfleet.execution.scheduler import Scheduler
from testfleet.model import Case, Outcome, Result, Variant
from testfleet.mutation.engine import Execution, MutationEngine
from testfleet.space import Int, Permutation, Space
from testfleet.space.declare import space_to_dict


@pytest.mark.parametrize(("text", "budget"), [
    ("500", Budget(executions=500)), ("90s", Budget(seconds=90)), ("2m", Budget(seconds=120)),
    ("1h30m", Budget(seconds=5400)), ("1.5m", Budget(seconds=90)), (" 3 ", Budget(executions=3))])
def test_budgets_parse(text: str, budget: Budget) -> None:
    assert Budget.parse(text) == budget


@given(st.text(max_size=12))
def test_any_budget_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        budget = Budget.parse(text)
    except UsageError as exc:
        assert "--explore" in str(exc)
    else:
        assert (budget.executions or 0) >= 1 or (budget.seconds or 0) > 0


def test_the_scheduler_appends_explored_items_in_their_pool() -> None:
    scheduler = Scheduler(["a", "b"], workers=2)
    while scheduler.next_batch("gw0", alive=2):
        pass
    assert scheduler.empty
    assert scheduler.extend(3, like=1) == [2, 3, 4]
    assert sorted(scheduler.next_batch("gw0", alive=2)) == [2, 3, 4] and scheduler.empty


SPACE = Space({"n": Int(0, 50), "order": Permutation(["x", "y", "z"])})


def _explorer(seed: int) -> tuple[Explorer, Case, Variant]:
    space = SPACE
    case = Case.from_nodeid("t.py::test[baseline]")
    baseline = Variant.of(case, space.baseline())
    explorer = Explorer(Budget(executions=30), seed, batch_size=4)
    items = [{"nodeid": case.nodeid, "params": space.baseline(), "space": space_to_dict(space)}]
    assert explorer.register(items, [case], [baseline]) == 1
    return explorer, case, baseline


def _result(variant: Variant, failed: bool) -> Result:
    return Result(run_id="r", variant_id=variant.variant_id, case_id=variant.case_id, nodeid="t.py::test",
                  outcome=Outcome.failed if failed else Outcome.passed, fingerprint="t.py:1:E")


class _Worker:
    """What a worker does with an explorable execution: its mutation engine proposes from the
    outcome and the task the coordinator sent (here with the telemetry a test gives)."""

    def __init__(self, explorer: Explorer, space: Space) -> None:
        self.explorer, self.space, self.engine = explorer, space, MutationEngine()
        self.proposed: list[dict] = []

    def run(self, variant: Variant, failed: bool, telemetry: dict | None = None) -> None:
        for key, document in self.explorer.ruleset_updates():
            self.engine.set_ruleset(key, document)
        task = self.explorer.task(0, variant, baseline=variant.origin == "baseline")
        result = _result(variant, failed)
        proposals = self.engine.propose(result.nodeid, self.space, task, Execution(
            failed=failed, fingerprint=result.fingerprint, telemetry=telemetry or {}))
        self.proposed += proposals
        self.explorer.observe(0, variant, result, (), proposals)


def _drive(seed: int, reverse: bool) -> list[tuple[str, dict]]:
    explorer, _case, baseline = _explorer(seed)
    worker = _Worker(explorer, SPACE)
    assert explorer.take() == []  # nothing before the baseline's result
    worker.run(baseline, False)
    stream = []
    while explorer.active:
        batch = explorer.take()
        assert batch and len(batch) <= 4
        assert explorer.take() == []  # the next batch waits for this one
        stream += [(v.origin, v.params) for _p, v in batch]
        answers = [(v, v.params["n"] > 40) for _p, v in batch]
        for variant, failed in reversed(answers) if reverse else answers:  # any arrival order
            worker.run(variant, failed)
    return stream


def test_the_same_seed_and_outcomes_give_the_same_stream_whatever_the_arrival_order() -> None:
    first, second = _drive(5, reverse=False), _drive(5, reverse=True)
    assert first == second and len(first) == 30
    assert len({repr(sorted(p.items())) for _o, p in first}) == 30  # no variant twice
    assert any(origin == "mutation" for origin, _p in first)  # failures were mutated around
    assert _drive(6, reverse=False) != first


RULE = """
rules:
  - mutation_name: {name}
    target_parameter: n
    variation_type: set
    values: [{value}]
"""


def test_an_edited_ruleset_applies_to_the_next_proposals(tmp_path) -> None:
    import os

    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(name="Seven", value=7))
    space = Space({"n": Int(0, 50), "order": Permutation(["x", "y", "z"])})
    case = Case.from_nodeid("t.py::test[baseline]")
    baseline = Variant.of(case, space.baseline())
    explorer = Explorer(Budget(executions=40), 1, batch_size=4, ruleset_path=str(path))
    explorer.register([{"nodeid": case.nodeid, "params": space.baseline(),
                        "space": space_to_dict(space)}], [case], [baseline])
    worker = _Worker(explorer, space)
    worker.run(baseline, False)
    first = _until(explorer, worker, "rule:Seven")  # the bandit gives the rule's source its turn
    assert any(v.origin == "rule:Seven" and v.params["n"] == 7 for _p, v in first)
    version = explorer.ruleset.version
    path.write_text(RULE.format(name="Eleven", value=11))
    os.utime(path, (1, 1))  # a different stamp even within the clock's resolution
    explorer._checked_at = 0.0  # the twice-a-second check is due
    for _p, variant in first:
        worker.run(variant, False)
    second = explorer.take()  # the edit is read here and sent to the workers with this batch
    assert explorer.ruleset.version != version and explorer.ruleset_versions == [version, explorer.ruleset.version]
    worker.proposed = []
    for _p, variant in second:
        worker.run(variant, False)
    after_edit = [p["origin"] for p in worker.proposed]
    assert "rule:Eleven" in after_edit and "rule:Seven" not in after_edit
    later = _until(explorer, worker, "rule:Eleven")
    assert any(v.origin == "rule:Eleven" and v.params["n"] == 11 for _p, v in later)


def _until(explorer: Explorer, worker: _Worker, origin: str) -> list:
    """Batches (each run as it comes) until one dispatches a variant of ``origin``; that batch,
    not yet run."""
    for _ in range(8):
        batch = explorer.take()
        if any(v.origin == origin for _p, v in batch):
            return batch
        for _p, variant in batch:
            worker.run(variant, False)
    return []


def test_the_edge_sweeps_run_first_whatever_the_bandit_draws() -> None:
    for seed in (1, 2, 3):
        explorer, _case, baseline = _explorer(seed)
        worker = _Worker(explorer, SPACE)
        worker.run(baseline, False)
        ran: list[Variant] = []
        while len(ran) < 16:
            batch = explorer.take()
            ran += [v for _p, v in batch]
            for _p, variant in batch:
                worker.run(variant, variant.params["n"] == 50)  # the first sweep row fails
        origins = [v.origin for v in ran]
        sweeps = origins.count("edge:sweep")
        assert sweeps >= 2 and origins[:sweeps] == ["edge:sweep"] * sweeps  # all before any other
        # row 0 (n=0, the declared order) is the baseline here, which ran: row 1 comes first,
        # every dimension at its far end
        assert ran[0].params == {"n": 50, "order": ["z", "y", "x"]}
