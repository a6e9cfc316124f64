"""Exploration: after the baseline, propose variants of the explorable cases until the budget
(``--explore 500`` executions or ``--explore 2m``) is spent.

Approach. A case is explorable when its test declared a space (``@testfleet.explore``, a
scenario's params, the SUT's config space; the collected item carries the declaration). Only
those cases take the budget. Each keeps one heap of waiting proposals per *source*:

* **coverage** (:mod:`testfleet.execution.explorer_sources`), generated here in rounds: ``edge``
  (each dimension's boundaries and special values: -1, 0, 2^31 +- 1, 2^63 - 1, empty, the
  longest text, a combining mark, NUL, right-to-left...), ``order`` (every item of a permutation
  right after every other), ``pairwise`` (a covering array that extends what already ran) and
  ``random`` points (in blocks that share their SUT configuration while a rule's trigger reads
  telemetry);
* **guided**, proposed by the workers' mutation engines (:mod:`testfleet.mutation.engine`) right
  after an execution, from its outcome and fresh telemetry: ``mutation`` (neighbours of a
  failure), ``anomaly`` (neighbours of an anomaly), ``rule:NAME`` (a rule whose trigger held),
  ``unmask`` (a coverage point that failed with a known failure, again without its suspects:
  :mod:`testfleet.execution.explorer_unmask`); and ``replay`` of past failures, first of all.

Which source gets the case's next execution is a bandit's choice
(:mod:`testfleet.execution.allocation`): Thompson sampling over each source's measured yield,
new distinct failures per execution, instead of fixed shares. Within a source, proposals go by
score (the table in :mod:`testfleet.execution.proposals`); guided scores are refreshed with what
the whole fleet has seen (a failure or an anomaly seen again sinks its neighbours).

The cases take turns a batch at a time (the one with the fewest explored executions first), and
a batch is dispatched grouped by SUT configuration, the instance's current one first, so the
instance restarts only when its configuration changes. A case gets at most ``per_case``
explored executions (by default, with two or more explorable cases and a number of executions,
twice its fair share; a case whose space ran out leaves its share to the others).

Every proposal is a :class:`~testfleet.model.Variant` of its case with a stable id: the explorer
never proposes an id it has dispatched or that the store says already ran (``known``), except
replays. Every random choice is seeded from the run seed and the case id (the engine's from the
case seed and the parent variant's id), and feedback applies a whole batch at a time in dispatch
order: the same seed and the same outcomes give the same proposals in the same order.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from testfleet.execution.allocation import SourceBandit, rule_prior
from testfleet.execution.explorer_rules import RuleLedger, RulesetFollower
from testfleet.execution.explorer_unmask import Unmasker
from testfleet.execution.explorer_sources import (
    CONFIG_BLOCK,
    FIRST_SOURCE,
    config_key,
    coverage_rounds,
    grouped_by_config,
)
from testfleet.execution.proposals import (
    MAX_ROOM,
    SCORES,
    Budget,
    CaseState,
    Proposal,
    fresh_score,
    pair_coverage,
)
from testfleet.model import Case, Result, Variant, stable_id
from testfleet.mutation.engine import ExploreTask, failure_key

__all__ = ["Budget", "Explorer", "Proposal", "failure_key"]


class Explorer(RulesetFollower):
    def __init__(self, budget: Budget, seed: int, *, known: set[str] | None = None,
                 replay: Sequence[tuple[str, dict[str, Any]]] = (),
                 ruleset_path: str | None = None, batch_size: int = 4,
                 per_case: int | None = None, replays_count: bool = True) -> None:
        self.budget = budget
        self.batch_size = max(1, batch_size)
        self.pending: dict[str, int] = {}  # dispatched variant id -> dispatch order, until observed
        self.waiting: set[int] = set()  # explorable cases whose baseline result is not in yet
        self.inbox: list[tuple[int, tuple[Any, ...]]] = []
        self._sequence = itertools.count()
        self.ruleset_path = ruleset_path
        self.ruleset: Any = None
        self._ruleset_stamp: tuple[float, int] | None = None
        self._checked_at = 0.0
        self._ruleset_sent: str | None = None
        self.ruleset_versions: list[str] = []
        self.rule_ledger = RuleLedger()
        self.provenance: list[dict[str, Any]] = []  # one event per dispatched variant
        self.seed = seed
        self.known = set(known or ())
        self.replay = list(replay)
        #: False: replays of past failures run outside the budget (an A/B comparison's arms must
        #: spend theirs on what their rulesets propose); ``replayed`` counts them
        self.replays_count = replays_count
        self.replayed = 0
        self.cases: dict[int, CaseState] = {}
        self.replays: list[Proposal] = []
        self.dispatched: set[str] = set()
        self.spent = 0
        self.started_at: float | None = None
        self.drained = False  # nothing left to propose and nothing in flight that could add some
        self.found: list[dict[str, Any]] = []  # failures exploration found
        self.failures_seen: dict[str, int] = {}  # failure_key -> failing executions
        self.anomalies_seen: dict[tuple[str, ...], int] = {}  # anomalous metrics -> times
        self.by_origin: dict[str, list[int]] = {}  # origin family -> [executions, failures, new]
        self._order = itertools.count()
        self.used_up: list[str] = []  # cases whose whole space ran before the budget was spent
        self.per_case = per_case  # explored executions one case may take (None: the budget's)
        self._default_cap = False  # per_case is ours (twice the fair share), not the user's
        self.case_spent: dict[int, int] = {}
        self.unmasker = Unmasker()
        #: (case state, params) -> params: specialisation aims explored variants at a granted SUT
        #: configuration (coordinator.specialising); None: proposals run as proposed
        self.steer: Any = None
        if ruleset_path is not None:
            self.reload_ruleset(force=True)

    def task(self, base: int, variant: Variant, reference: dict[str, list[float]] | None = None,
             *, baseline: bool = False, origin: str = "") -> ExploreTask | None:
        """What the worker's mutation engine needs with this execution of case ``base``: its
        seed and baseline, the rulesets, the case's telemetry reference, and the room its budget
        leaves (None: not an explorable case)."""
        state = self.cases.get(base)
        if state is None:
            return None
        cap = self._cap(base)
        room = MAX_ROOM if cap is None else max(0, min(MAX_ROOM, cap - self.case_spent.get(base, 0)))
        dims = {k: v for k, v in variant.params.items() if k in state.space.dimensions}
        return ExploreTask(variant_id=variant.variant_id, case_seed=state.seed, baseline=dict(state.baseline),
                           params={**state.baseline, **dims}, room=room,
                           rulesets=self.ruleset_keys(),
                           reference=dict(reference or {}))

    # -- setup -------------------------------------------------------------------------------
    def register(self, items: Sequence[dict[str, Any]], cases: Sequence[Case],
                 variants: Sequence[Variant]) -> int:
        """Find the explorable cases among the collected items; returns how many there are."""
        from testfleet.space.declare import space_from_dict

        by_nodeid = {}
        for index, item in enumerate(items):
            declared = item.get("space")
            if not declared:
                continue
            space = space_from_dict(declared, source=item["nodeid"])
            params = dict(item.get("params") or {})
            case = cases[index]
            case_seed = int(stable_id("explore", self.seed, case.case_id)[:8], 16)
            baseline = {k: params.get(k, v) for k, v in space.baseline().items()}
            state = CaseState(index, case, space, {k: v for k, v in params.items() if k not in space.dimensions},
                              baseline, case_seed, SourceBandit(case_seed), last_config=config_key(baseline))
            state.ran.append(dict(state.baseline))
            state.rounds = coverage_rounds(state, self._push, partial(self.used_up.append, case.nodeid),
                                           self._config_block)
            self.cases[index] = state
            # the declared space, kept with the run: coverage of a finished run is measured
            # against it without the project (GET /runs/{id}/coverage, the dashboard's heatmap)
            self.provenance.append({"kind": "space", "case_id": case.case_id, "nodeid": item["nodeid"],
                                    "message": f"space of {item['nodeid']}", "space": declared})
            self.waiting.add(index)
            self.dispatched.add(variants[index].variant_id)
            by_nodeid[item["nodeid"]] = state
        if self.per_case is None and self.budget.executions is not None and len(self.cases) > 1:
            # no case may take more than twice its fair share of the executions
            self.per_case = max(8, -(-2 * self.budget.executions // len(self.cases)))
            self._default_cap = True
        for nodeid, params in self.replay:
            replayed = by_nodeid.get(nodeid)
            if replayed is not None:
                self._push(replayed, params, "replay", None, {"reason": "failed in an earlier run"})
        return len(self.cases)

    def _config_block(self) -> int:
        """Random points in a row that share a SUT configuration: several while a rule's trigger
        reads telemetry (a warm instance's), else one (more configurations tried)."""
        triggered = self.ruleset is not None and any(r.enabled and r.trigger for r in self.ruleset)
        return CONFIG_BLOCK if triggered else 1

    # -- budget ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.cases) and not self.exhausted

    @property
    def settled(self) -> bool:
        """Spent, and every explored variant's final result is in (minimisation may start: it
        must not rerun a variant that is still running, it reuses its outcome)."""
        return not self.active and not self.pending

    @property
    def exhausted(self) -> bool:
        if self.drained:
            return True
        if self.per_case is not None and self.cases and all(
                self.case_spent.get(base, 0) >= (self._cap(base) or 0) for base in self.cases):
            return True
        if self.budget.executions is not None:
            return self.spent >= self.budget.executions
        return self.started_at is not None and time.monotonic() - self.started_at >= (self.budget.seconds or 0)

    def _cap(self, base: int) -> int | None:
        """The explored executions case ``base`` may take: ``per_case``, and when that is our
        default, the whole remaining budget once every other case's space ran out."""
        if self.per_case is None:
            return None
        if self._default_cap and all(self.cases[b].rounds is None and not self.cases[b].waiting()
                                     for b in self.cases if b != base):
            return self.budget.executions
        return self.per_case

    # -- proposals ---------------------------------------------------------------------------
    def take(self, count: int | None = None) -> list[tuple[Proposal, Variant]]:
        """The next batch of proposals, each a new variant, counted against the budget; empty
        while the previous batch (or a baseline) is still running.

        Batches keep the stream reproducible: feedback is applied only once a whole batch is
        back, in the order it was dispatched, so which worker finished first changes nothing;
        the same seed and the same outcomes give the same variants (telemetry-triggered rules
        depend on what was measured, as they should)."""
        if self.pending or self.waiting:
            return []
        self.flush()
        count = self.batch_size if count is None else min(count, self.batch_size)
        if self.started_at is None:
            self.started_at = time.monotonic()
        out: list[tuple[Proposal, Variant]] = []
        state: CaseState | None = None
        proposal: Proposal | None
        while len(out) < count and not self.exhausted:
            if self.replays:
                proposal = heapq.heappop(self.replays)
            else:
                if state is None or not self._has_room(state) or not self._ready(state):
                    state = self._next_case()  # one case per batch: its configs stay together
                    if state is None:
                        break
                proposal = self._pop(state)
                if proposal is None:
                    state = None
                    continue
            taken = self._dispatch(proposal)
            if taken is not None:
                out.append((proposal, taken))
        if not out and not self.exhausted and not self.replays \
                and all(not self._ready(s) for s in self.cases.values()):
            self.drained = True  # nothing in flight can add a proposal: the run may go on
        return self._grouped(out)

    def _has_room(self, state: CaseState) -> bool:
        cap = self._cap(state.base)
        return cap is None or self.case_spent.get(state.base, 0) < cap

    def _ready(self, state: CaseState) -> bool:
        """Whether the case has a proposal waiting, generating the next round if it needs one."""
        while not state.waiting() and state.rounds is not None:
            try:
                next(state.rounds)
            except StopIteration:
                state.rounds = None
        return bool(state.waiting())

    def _next_case(self) -> CaseState | None:
        """The case with room and proposals that has taken the fewest explored executions."""
        order = sorted(self.cases.values(), key=lambda s: (self.case_spent.get(s.base, 0), s.base))
        return next((s for s in order if self._has_room(s) and self._ready(s)), None)

    def _pop(self, state: CaseState) -> Proposal | None:
        """The best waiting proposal of the source the case's bandit chooses."""
        while state.rounds is not None and not state.heaps.get("random"):
            try:  # every coverage source on offer from the start: the bandit weighs them
                next(state.rounds)
            except StopIteration:
                state.rounds = None
        # a space's edge sweeps are a short fixed design: they run first, as the baseline did
        source = FIRST_SOURCE if state.heaps.get(FIRST_SOURCE) else state.bandit.choose(state.waiting())
        if source is None:
            return None
        heap = state.heaps[source]
        while True:  # the chosen source's best proposal by today's scores: the choice stands
            proposal = heapq.heappop(heap)
            # it may have lost its promise since it was proposed
            fresh = fresh_score(proposal.origin, proposal.provenance, self.failures_seen, self.anomalies_seen)
            if fresh is not None and fresh < proposal.score - 1e-9 and heap and fresh < heap[0].score:
                proposal.score, proposal.sort_key = fresh, (-fresh, proposal.order)
                heapq.heappush(heap, proposal)
                continue
            return proposal

    def _dispatch(self, proposal: Proposal) -> Variant | None:
        state = self.cases[proposal.base]
        forced = proposal.origin == "replay"
        if not forced and not self._has_room(state):
            return None
        params = {**state.fixed, **proposal.params}
        if self.steer is not None and not forced:
            params = self.steer(state, params)
        variant = Variant.of(state.case, params, origin=proposal.origin, parent_id=proposal.parent_id)
        if variant.variant_id in self.dispatched or (variant.variant_id in self.known and not forced):
            return None
        self.dispatched.add(variant.variant_id)
        self.pending[variant.variant_id] = next(self._sequence)
        self.provenance.append({
            "kind": "variant", "case_id": state.case.case_id, "variant_id": variant.variant_id,
            "nodeid": state.case.nodeid, "score": proposal.score,
            "message": f"{proposal.origin} (score {proposal.score:.2f})",
            "origin": proposal.origin, "parent_id": proposal.parent_id,
            "seed": state.seed, **proposal.provenance})
        state.ran.append(dict(proposal.params))
        if forced and not self.replays_count:
            self.replayed += 1
        else:
            self.case_spent[state.base] = self.case_spent.get(state.base, 0) + 1
            self.spent += 1
        return variant

    def _grouped(self, out: list[tuple[Proposal, Variant]]) -> list[tuple[Proposal, Variant]]:
        """The batch grouped by SUT configuration, each case's current one first (see
        :func:`~testfleet.execution.explorer_sources.grouped_by_config`)."""
        ordered = grouped_by_config(out, self.cases)
        for proposal, _variant in ordered:
            state = self.cases[proposal.base]
            state.last_config = config_key({**state.baseline, **proposal.params})
        return ordered

    def _push(self, state: CaseState, params: dict[str, Any], origin: str, parent: str | None,
              provenance: dict[str, Any], *, bonus: float = 0.0,
              score: float | None = None) -> None:
        clean = {k: v for k, v in params.items() if k in state.space.dimensions and type(v).__name__ != "_Missing"}
        if state.space.violations({**state.baseline, **clean}):
            return  # every explored variant keeps every constraint, a replay's too
        family = origin.split(":", 1)[0]
        value = (SCORES.get(family, 1.0) if score is None else score) + bonus
        proposal = Proposal(value, state.base, clean, origin, parent, provenance, order=next(self._order))
        heap = self.replays if origin == "replay" else state.heaps.setdefault(origin, [])
        heapq.heappush(heap, proposal)

    # -- feedback ----------------------------------------------------------------------------
    def observe(self, base: int, variant: Variant, result: Result,
                anomalies: Sequence[dict[str, Any]] = (),
                proposals: Sequence[dict[str, Any]] = ()) -> None:
        """A final result of an explorable case with the proposals its worker's mutation engine
        made after it; they wait for the batch (see take)."""
        if base not in self.cases:
            return
        seq: int | None
        if variant.origin == "baseline":
            self.waiting.discard(base)
            seq = -len(self.cases) - 1 + base  # baselines first, in collection order
        else:
            seq = self.pending.pop(variant.variant_id, None)
            if seq is None:
                return
        self.inbox.append((seq, (base, variant, result, list(anomalies), list(proposals))))

    def flush(self) -> None:
        """Apply the outcomes that came back, in dispatch order."""
        for _seq, args in sorted(self.inbox, key=lambda entry: entry[0]):
            self._apply(*args)
        self.inbox = []

    def _apply(self, base: int, variant: Variant, result: Result,
               anomalies: Sequence[dict[str, Any]], proposals: Sequence[dict[str, Any]]) -> None:
        """Count the outcome (the source's yield), then queue the worker's proposals, re-scored
        with the fleet's view."""
        state = self.cases[base]
        family = (variant.origin or "baseline").split(":", 1)[0]
        failed = result.outcome.is_failure
        key = failure_key(result.fingerprint, result.message) if failed else None
        new = key is not None and key not in state.failures
        if key is not None:
            state.failures.add(key)
        params = {k: v for k, v in variant.params.items() if k in state.space.dimensions}
        again = self.unmasker.observe(key, not new, variant.origin, params, state.baseline)
        if again is not None:  # a known failure may have hidden another: once more without it
            self._push(state, again, "unmask", variant.variant_id, {"unmasks": key})
        self.reload_ruleset()
        self.rule_ledger.evaluate(self.ruleset, state.case.nodeid, state.space.dimensions,
                                  result.telemetry, result.duration)
        if variant.origin != "baseline":
            counts = self.by_origin.setdefault(family, [0, 0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            counts[2] += int(new)
            if variant.origin != "replay":
                state.bandit.record(variant.origin, 1.0 if new else 0.0)
            if family == "rule":
                self.rule_ledger.ran(variant.origin.split(":", 1)[1], failed,
                                     (result.message or "").strip().split("\n")[0][:120] if new else None)
        if key is not None:  # failed
            if variant.origin != "baseline":
                self.found.append({"base": base, "nodeid": result.nodeid,
                                   "variant_id": variant.variant_id,
                                   "params": params, "origin": variant.origin,
                                   "message": result.message, "fingerprint": result.fingerprint})
            # a failure already seen many times is known: its neighbours sink (the minimiser
            # will map it), so the other sources keep looking for new ones
            self.failures_seen[key] = self.failures_seen.get(key, 0) + 1
        # an explored parameter moves its metrics by design (a bigger payload, more memory): the
        # same metrics' anomalies again and again are its new normal, so their neighbours sink
        anomalous = {tuple(p["provenance"].get("metrics") or ()) for p in proposals if p.get("origin") == "anomaly"}
        for metrics in anomalous:
            self.anomalies_seen[metrics] = self.anomalies_seen.get(metrics, 0) + 1
        for p in proposals:
            if p.get("ruleset") not in (None, self.ruleset_path):
                continue  # another arm's rules (A/B)
            origin = str(p["origin"])
            if origin.startswith("rule:"):
                self.rule_ledger.proposed(origin.split(":", 1)[1])
                state.bandit.set_prior(origin, rule_prior(p.get("provenance", {}).get("priority", 1)))
            provenance = {**p.get("provenance", {}), "proposed_by": result.worker}
            fresh = fresh_score(origin, provenance, self.failures_seen, self.anomalies_seen)
            self._push(state, dict(p["params"]), origin, variant.variant_id, provenance,
                       score=float(p["score"]) if fresh is None else fresh)

    def minimize_job(self, found: dict[str, Any], max_tests: int) -> Any:
        """A minimisation job for one failing variant exploration found."""
        from testfleet.mutation.minimize_job import MinimizeJob

        state = self.cases[found["base"]]
        return MinimizeJob(base=state.base, case_id=state.case.case_id, nodeid=found["nodeid"],
                           variant_id=found["variant_id"], fingerprint=found.get("fingerprint"),
                           baseline=dict(state.baseline), failing=dict(found["params"]),
                           fixed=dict(state.fixed), space=state.space, max_tests=max_tests,
                           message=found.get("message"))

    def rules_report(self) -> dict[str, dict[str, Any]]:
        """Every rule of the ruleset with what it did, and why when it found nothing."""
        spaces = {s.case.nodeid: list(s.space.dimensions) for s in self.cases.values()}
        return self.rule_ledger.report(self.ruleset, spaces)

    def summary(self) -> dict[str, Any]:
        self.flush()  # the last batch
        coverage = {state.case.nodeid: pair_coverage(state) for state in self.cases.values()}
        return {"budget": self.budget.describe(), "executions": self.spent, "coverage": coverage,
                "cases": len(self.cases), "found": [{k: v for k, v in f.items() if k != "base"}
                                                    for f in self.found],
                "by_origin": {k: {"executions": v[0], "failures": v[1], "new_failures": v[2]}
                              for k, v in sorted(self.by_origin.items())},
                "allocation": {s.case.nodeid: s.bandit.summary() for s in self.cases.values()},
                "rules": self.rules_report(),
                "ruleset_versions": self.ruleset_versions, "used_up": list(self.used_up)}
