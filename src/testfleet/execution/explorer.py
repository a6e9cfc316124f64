"""Exploration: after the baseline, propose scored variants of the explorable cases until the
budget (``--explore 500`` executions or ``--explore 2m``) is spent.

Approach. A case is explorable when its test declared a space (``@testfleet.explore``, a
scenario's params, the SUT's config space; the collected item carries the declaration). Two kinds
of sources feed the coordinator's two priority queues; each proposal has a *mutation score* and
the highest run first:

* **guided** (queue ``queue``), proposed by the workers' mutation engines
  (:mod:`testfleet.mutation.engine`) right after an execution, from its outcome and its fresh
  telemetry, within the case's budget (``room``, sent with the task): rules whose trigger held,
  neighbours of a failure, neighbours of an anomaly. The coordinator re-scores them with what the
  whole fleet has seen and again whenever they are popped (:meth:`Explorer._fresh_score`), plus
  ``replay`` of past failures, first of all.
* **coverage** (heap ``cover``), generated here per case in rounds: edges, orders putting every
  item right after every other, a pairwise covering array that extends what already ran, random
  points in chunks. Half of the budget is kept for them (``COVERAGE_SHARE``), so a guess that
  keeps scoring high cannot starve the plain search.

=================================  ======================================================
source (``origin``)                score
=================================  ======================================================
``replay`` (failed in a past run)  10 — like Hypothesis's example database
``mutation`` (near a failure)      4 + 1 when it was also anomalous − 0.5 per earlier
                                   failure with the same key (at least 0.5)
``anomaly`` (near an anomaly)      3 + robust z / 20 (at most 1) − 0.5 per earlier anomaly of the
                                   same metrics (at least 0.5)
``rule:NAME`` (its trigger held)   2 + priority / 2 + 2 × its yield − 0.1 × its fruitless runs
``edge``, ``order``, ``pairwise``  about 1.5, taking turns
``random``                         1
=================================  ======================================================

Every proposal is a :class:`~testfleet.model.Variant` of its case with a stable id: the explorer
never proposes an id it has dispatched or that the store says already ran (``known``), except
replays. A case gets at most ``per_case`` explored executions (by default, with two or more
explorable cases and a number of executions, twice its fair share). Every random choice is seeded
from the run seed and the case id (the engine's from the case seed and the parent variant's id).
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

from testfleet.errors import UsageError
from testfleet.execution.proposals import (
    _RANDOM_CHUNK,
    COVERAGE_SHARE,
    COVERAGE_SOURCES,
    MAX_ROOM,
    SCORES,
    Budget,
    Proposal,
    _CaseState,
    _pair_coverage,
)
from testfleet.model import Case, Result, Variant, stable_id
from testfleet.mutation.engine import ExploreTask, failure_key

__all__ = ["Budget", "Explorer", "Proposal", "failure_key"]

_FRUITLESS_CHUNKS = 8
"""Random chunks in a row that bring no point drawn before: a small space is used up."""


class Explorer:
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
        self.rule_stats: dict[str, list[int]] = {}  # rule name -> [executions, failures]
        self.ruleset_versions: list[str] = []
        self.provenance: list[dict[str, Any]] = []  # one event per dispatched variant
        self.seed = seed
        self.known = set(known or ())
        self.replay = list(replay)
        #: False: replays of past failures run outside the budget (an A/B comparison's arms must
        #: spend theirs on what their rulesets propose); ``replayed`` counts them
        self.replays_count = replays_count
        self.replayed = 0
        self.cases: dict[int, _CaseState] = {}
        self.queue: list[Proposal] = []  # guided: replays, mutations, anomalies, rules
        self.cover: list[Proposal] = []  # coverage: edges, uncovered pairs, random points
        self.cover_spent = 0
        self.dispatched: set[str] = set()
        self.spent = 0
        self.started_at: float | None = None
        self.found: list[dict[str, Any]] = []  # failures exploration found
        self.failures_seen: dict[str, int] = {}  # failure_key -> failing executions
        self.anomalies_seen: dict[tuple[str, ...], int] = {}  # anomalous metrics -> times
        self.by_origin: dict[str, list[int]] = {}  # origin family -> [executions, failures]
        self._order = itertools.count()
        self.used_up: list[str] = []  # cases whose whole space ran before the budget was spent
        self.per_case = per_case  # explored executions one case may take (None: the budget's)
        self.case_spent: dict[int, int] = {}
        self._ruleset_sent: str | None = None
        if ruleset_path is not None:
            self.reload_ruleset(force=True)

    # -- the ruleset ---------------------------------------------------------------------------
    def reload_ruleset(self, *, force: bool = False) -> bool:
        """Read the ruleset again if its file changed (checked at most twice a second): an edit
        during a run applies to the proposals made after it. A file that became invalid keeps
        the last good version (and says so once per version)."""
        if self.ruleset_path is None:
            return False
        now = time.monotonic()
        if not force and now - self._checked_at < 0.5:
            return False
        self._checked_at = now
        import os

        from testfleet.mutation.rules import load_ruleset

        try:
            stat = os.stat(self.ruleset_path)
        except OSError:
            return False
        stamp = (stat.st_mtime, stat.st_size)
        if not force and stamp == self._ruleset_stamp:
            return False
        self._ruleset_stamp = stamp
        try:
            ruleset = load_ruleset(self.ruleset_path)
        except UsageError:
            if force:
                raise
            return False
        changed = self.ruleset is None or ruleset.version != self.ruleset.version
        self.ruleset = ruleset
        if changed:
            self.ruleset_versions.append(ruleset.version)
        return changed

    def ruleset_updates(self) -> list[tuple[str, dict[str, Any]]]:
        """The ruleset versions the workers have not been sent yet: ``(key, document)``."""
        if self.ruleset is None or self.ruleset_path is None or self._ruleset_sent == self.ruleset.version:
            return []
        self._ruleset_sent = self.ruleset.version
        return [(self.ruleset_path, self.ruleset.to_dict())]

    def ruleset_keys(self) -> tuple[str, ...]:
        """The keys of the rulesets a worker's engine applies (the ruleset's path)."""
        return (self.ruleset_path,) if self.ruleset is not None and self.ruleset_path else ()

    def rulesets(self) -> list[tuple[str, dict[str, Any]]]:
        """Every ruleset's current version (for a worker that just joined)."""
        return [(key, self.ruleset.to_dict()) for key in self.ruleset_keys()]

    def task(self, base: int, variant: Variant, reference: dict[str, list[float]] | None = None,
             *, baseline: bool = False, origin: str = "") -> ExploreTask | None:
        """What the worker's mutation engine needs with this execution of case ``base``: its
        seed and baseline, the rulesets, the case's telemetry reference, and the room its budget
        leaves (None: not an explorable case)."""
        state = self.cases.get(base)
        if state is None:
            return None
        room = MAX_ROOM if self.per_case is None else max(0, min(MAX_ROOM, self.per_case - self.case_spent.get(base, 0)))
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
            state = _CaseState(index, case, space, {k: v for k, v in params.items() if k not in space.dimensions},
                               {k: params.get(k, v) for k, v in space.baseline().items()},
                               case_seed)
            state.ran.append(dict(state.baseline))
            state.rounds = self._rounds(state)
            self.cases[index] = state
            self.waiting.add(index)
            self.dispatched.add(variants[index].variant_id)
            by_nodeid[item["nodeid"]] = state
        if self.per_case is None and self.budget.executions is not None and len(self.cases) > 1:
            # no case may take more than twice its fair share of the executions
            self.per_case = max(8, -(-2 * self.budget.executions // len(self.cases)))
        for nodeid, params in self.replay:
            state = by_nodeid.get(nodeid)
            if state is not None:
                self._push(state, params, "replay", None, {"reason": "failed in an earlier run"})
        return len(self.cases)

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
        if self.per_case is not None and self.cases and all(
                self.case_spent.get(base, 0) >= self.per_case for base in self.cases):
            return True
        if self.budget.executions is not None:
            return self.spent >= self.budget.executions
        return self.started_at is not None and time.monotonic() - self.started_at >= (self.budget.seconds or 0)

    # -- proposals ---------------------------------------------------------------------------
    def take(self, count: int | None = None) -> list[tuple[Proposal, Variant]]:
        """The next batch of proposals, best first, each a new variant, counted against the
        budget; empty while the previous batch (or a baseline) is still running.

        Batches keep the stream reproducible: feedback is applied only once a whole batch is
        back, in the order it was dispatched, so which worker finished first changes nothing;
        the same seed and the same outcomes give the same variants (telemetry-triggered rules
        depend on what was measured, as they should)."""
        if self.pending or self.waiting:
            return []
        for _seq, args in sorted(self.inbox, key=lambda entry: entry[0]):
            self._apply(*args)
        self.inbox = []
        count = self.batch_size if count is None else min(count, self.batch_size)
        out: list[tuple[Proposal, Variant]] = []
        if self.started_at is None:
            self.started_at = time.monotonic()
            self._refill()  # edges (and the rules that always apply)
            self._refill()  # the pairwise covering array: both bounded, scored against each other
        stalled = 0
        while len(out) < count and not self.exhausted:
            # coverage sources (edges, pairs, random points) refill once their best waiting
            # proposal scores no better than a random point
            if (not self.cover or self.cover[0].score <= SCORES["random"]) and not self._refill() \
                    and not self.cover and not self.queue:
                stalled += 1
                if stalled > 2:
                    break
                continue
            heap = self._next_heap()
            proposal = heapq.heappop(heap)
            fresh = self._fresh_score(proposal.origin, proposal.provenance)  # its source may have lost its promise since
            if fresh is not None and fresh < proposal.score - 1e-9 and heap \
                    and fresh < heap[0].score:
                proposal.score, proposal.sort_key = fresh, (-fresh, proposal.order)
                heapq.heappush(heap, proposal)
                continue
            if proposal.origin.split(":", 1)[0] in COVERAGE_SOURCES:
                self.cover_spent += 1
            state = self.cases[proposal.base]
            if self.per_case is not None and self.case_spent.get(state.base, 0) >= self.per_case:
                state.rounds = None  # this case's budget is spent: nothing more of it
                continue
            variant = Variant.of(state.case, {**state.fixed, **proposal.params},
                                 origin=proposal.origin, parent_id=proposal.parent_id)
            forced = proposal.origin == "replay"
            if variant.variant_id in self.dispatched or (variant.variant_id in self.known and not forced):
                continue
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
            out.append((proposal, variant))
        return out

    def _next_heap(self) -> list[Proposal]:
        """Guided proposals (replays, mutations near failures and anomalies, fired rules) go by
        score, but coverage keeps a share of the budget: a guess that keeps scoring high must not
        starve the plain search that finds what no signal points to."""
        if self.queue and self.queue[0].origin == "replay":
            return self.queue
        if not self.queue:
            return self.cover
        if not self.cover:
            return self.queue
        if self.cover_spent < COVERAGE_SHARE * (self.spent + 1):
            return self.cover
        return self.queue if self.queue[0].score >= self.cover[0].score else self.cover

    def _refill(self) -> bool:
        """Ask every case's generator for its next round; False when all are exhausted."""
        grew = False
        for state in self.cases.values():
            if state.rounds is None:
                continue
            try:
                next(state.rounds)
                grew = True
            except StopIteration:
                state.rounds = None
        return grew or bool(self.queue) or bool(self.cover)

    def _rounds(self, state: _CaseState) -> Any:
        from testfleet.space.composite import Permutation
        from testfleet.space.orders import adjacent_pair_orders
        from testfleet.space.sampling import covering_points, edge_points, random_points

        # edges, uncovered pairs and random points take turns (each a little less urgent than
        # the one before): one-factor boundaries, every two-level combination, and the
        # conjunctions of three and more and values between levels that pairs never reach
        for i, point in enumerate(edge_points(state.space).points):
            self._push(state, point.params, "edge", None, {"edge": point.origin},
                       score=SCORES["pairwise"] - 0.001 * i - 0.0007)
        for name, dim in state.space.dimensions.items():  # orders: every item right after every other
            if isinstance(dim, Permutation):
                for i, order in enumerate(adjacent_pair_orders(dim.items, state.seed)):
                    self._push(state, {**state.baseline, name: order}, "order", None,
                               {"covers": "adjacent pairs of " + name},
                               score=SCORES["pairwise"] - 0.001 * i + 0.0006)
        yield
        if len(state.space) >= 2:
            rows = covering_points(state.space, 2, state.seed, existing=state.ran).points
            for i, point in enumerate(rows):
                self._push(state, point.params, "pairwise", None, {}, bonus=-0.001 * i)
            for i, point in enumerate(random_points(state.space, len(rows), state.seed + 10**6).points):
                self._push(state, point.params, "random", None, {},
                           score=SCORES["pairwise"] - 0.001 * i - 0.0005)
            yield
        chunk = fruitless = 0
        seen: set[str] = set()
        while fruitless < _FRUITLESS_CHUNKS:  # a small space runs out: every point drawn again
            chunk += 1
            points = random_points(state.space, _RANDOM_CHUNK, state.seed + chunk).points
            if not points:
                return
            fresh = 0
            for point in points:
                key = json.dumps(point.params, sort_keys=True, default=repr)
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                self._push(state, point.params, "random", None, {})
            fruitless = 0 if fresh else fruitless + 1
            yield
        self.used_up.append(state.case.nodeid)

    def _push(self, state: _CaseState, params: dict[str, Any], origin: str, parent: str | None,
              provenance: dict[str, Any], *, bonus: float = 0.0,
              score: float | None = None) -> None:
        clean = {k: v for k, v in params.items() if k in state.space.dimensions and type(v).__name__ != "_Missing"}
        if state.space.violations({**state.baseline, **clean}):
            return  # every explored variant keeps every constraint, a replay's too
        family = origin.split(":", 1)[0]
        value = (SCORES.get(family, 1.0) if score is None else score) + bonus
        heap = self.cover if family in COVERAGE_SOURCES else self.queue
        heapq.heappush(heap, Proposal(value, state.base, clean, origin, parent, provenance,
                                            order=next(self._order)))

    # -- feedback ----------------------------------------------------------------------------
    def observe(self, base: int, variant: Variant, result: Result,
                anomalies: Sequence[dict[str, Any]] = (),
                proposals: Sequence[dict[str, Any]] = ()) -> None:
        """A final result of an explorable case with the proposals its worker's mutation engine
        made after it; they wait for the batch (see take)."""
        if base not in self.cases:
            return
        if variant.origin == "baseline":
            self.waiting.discard(base)
            seq = -len(self.cases) - 1 + base  # baselines first, in collection order
        else:
            seq = self.pending.pop(variant.variant_id, None)
            if seq is None:
                return
        self.inbox.append((seq, (base, variant, result, list(anomalies), list(proposals))))

    def _apply(self, base: int, variant: Variant, result: Result,
               anomalies: Sequence[dict[str, Any]], proposals: Sequence[dict[str, Any]]) -> None:
        """Count the outcome, then queue the worker's proposals, re-scored with the fleet's view."""
        state = self.cases[base]
        family = (variant.origin or "baseline").split(":", 1)[0]
        failed = result.outcome.is_failure
        if variant.origin != "baseline":
            counts = self.by_origin.setdefault(family, [0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            if family == "rule":
                stats = self.rule_stats.setdefault(variant.origin.split(":", 1)[1], [0, 0])
                stats[0] += 1
                stats[1] += int(failed)
        params = {k: v for k, v in variant.params.items() if k in state.space.dimensions}
        self.reload_ruleset()
        if failed:
            if variant.origin != "baseline":
                self.found.append({"base": base, "nodeid": result.nodeid,
                                   "variant_id": variant.variant_id,
                                   "params": params, "origin": variant.origin,
                                   "message": result.message, "fingerprint": result.fingerprint})
            # a failure already seen many times is known: its neighbours sink (the minimiser
            # will map it), so the other sources keep looking for new ones
            key = failure_key(result.fingerprint, result.message)
            self.failures_seen[key] = self.failures_seen.get(key, 0) + 1
        # an explored parameter moves its metrics by design (a bigger payload, more memory): the
        # same metrics' anomalies again and again are its new normal, so their neighbours sink
        anomalous = {tuple(p["provenance"].get("metrics") or ()) for p in proposals if p.get("origin") == "anomaly"}
        for metrics in anomalous:
            self.anomalies_seen[metrics] = self.anomalies_seen.get(metrics, 0) + 1
        for p in proposals:
            if p.get("ruleset") not in (None, self.ruleset_path):
                continue  # another arm's rules (A/B)
            provenance = {**p.get("provenance", {}), "proposed_by": result.worker}
            fresh = self._fresh_score(p["origin"], provenance)
            self._push(state, dict(p["params"]), str(p["origin"]), variant.variant_id, provenance,
                       score=float(p["score"]) if fresh is None else fresh)

    def _mutation_score(self, key: str, anomalous: bool) -> float:
        seen = self.failures_seen.get(key, 1)
        return max(0.5, SCORES["mutation"] + (1.0 if anomalous else 0.0) - 0.5 * (seen - 1))

    def _anomaly_score(self, metrics: Sequence[str], z: float) -> float:
        seen = self.anomalies_seen.get(tuple(metrics), 1)
        return max(0.5, SCORES["anomaly"] + min(1.0, z / 20.0) - 0.5 * (seen - 1))

    def _fresh_score(self, origin: str, provenance: dict[str, Any]) -> float | None:
        """The score a proposal would get now (None: scores of its kind never change)."""
        if origin.startswith("rule:"):
            return self._rule_score(provenance["rule"], provenance["priority"])
        if origin == "mutation" and "failure" in provenance:
            return self._mutation_score(provenance["failure"], bool(provenance.get("anomalous")))
        if origin == "anomaly" and "metrics" in provenance:
            return self._anomaly_score(provenance["metrics"], float(provenance.get("z") or 0.0))
        return None

    def _rule_score(self, name: str, priority: float) -> float:
        """A rule that finds failures climbs; one that keeps firing without finding any sinks,
        so an always-true trigger cannot starve the other sources."""
        runs, fails = self.rule_stats.get(name, [0, 0])
        return max(0.5, SCORES["rule"] + 0.5 * priority + 2.0 * (fails / runs if runs else 0.0)
                   - 0.1 * (runs - fails))

    def minimize_job(self, found: dict[str, Any], max_tests: int) -> Any:
        """A minimisation job for one failing variant exploration found."""
        from testfleet.mutation.minimize_job import MinimizeJob

        state = self.cases[found["base"]]
        return MinimizeJob(base=state.base, case_id=state.case.case_id, nodeid=found["nodeid"],
                           variant_id=found["variant_id"], fingerprint=found.get("fingerprint"),
                           baseline=dict(state.baseline), failing=dict(found["params"]),
                           fixed=dict(state.fixed), space=state.space, max_tests=max_tests,
                           message=found.get("message"))

    def summary(self) -> dict[str, Any]:
        for _seq, args in sorted(self.inbox, key=lambda entry: entry[0]):  # the last batch
            self._apply(*args)
        self.inbox = []
        coverage = {state.case.nodeid: _pair_coverage(state) for state in self.cases.values()}
        return {"budget": self.budget.describe(), "executions": self.spent, "coverage": coverage,
                "cases": len(self.cases), "found": [{k: v for k, v in f.items() if k != "base"}
                                                    for f in self.found],
                "by_origin": {k: {"executions": v[0], "failures": v[1]}
                              for k, v in sorted(self.by_origin.items())},
                "rules": {k: {"executions": v[0], "failures": v[1]}
                          for k, v in sorted(self.rule_stats.items())},
                "ruleset_versions": self.ruleset_versions, "used_up": list(self.used_up)}
