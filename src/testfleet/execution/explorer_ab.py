"""A/B test of two rulesets: ``--ruleset A.yaml --ruleset-b B.yaml --ab 50``.

The budget is split between two explorers, arm A with ruleset A and arm B with ruleset B
(``--ab`` is B's share in percent); everything else is the same (the seed, the sources, the
scores), and they share one set of dispatched variants, so neither runs what the other already
ran. Batches go to the arm furthest behind its share. The comparison is what a ruleset is for:
*distinct* failures (by fingerprint) found per execution. Fisher's exact test on (executions that
revealed a new distinct failure, the other executions) of each arm says whether the difference
is more than chance; with few failures it says so (p near 1) rather than naming a winner.
Replays of past failures run first, once, outside both arms' budgets and the comparison. The
verdict is stored as an ``ab`` event of the run (``testfleet show`` prints it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from scipy import stats

from testfleet.execution.explorer import Budget, Explorer, Proposal
from testfleet.model import Case, Result, Variant

__all__ = ["ABExplorer"]


class ABExplorer:
    def __init__(self, budget: Budget, seed: int, *, ruleset_a: str | None, ruleset_b: str,
                 share_b: float, **common: Any) -> None:
        if not 0 < share_b < 100:
            raise ValueError("share_b must be between 0 and 100 (exclusive)")
        self.budget = budget
        self.share_b = share_b / 100.0
        # replays of past failures run once, outside both arms' budgets and the comparison:
        # they measure the past, not a ruleset
        self.arms = {
            "A": Explorer(_part(budget, 1 - self.share_b), seed, ruleset_path=ruleset_a,
                          replays_count=False, **common),
            "B": Explorer(_part(budget, self.share_b), seed, ruleset_path=ruleset_b,
                          replays_count=False, **common),
        }
        shared = self.arms["A"].dispatched
        self.arms["B"].dispatched = shared  # one set: neither arm reruns the other's variants
        self.fingerprints: dict[str, set[str | None]] = {"A": set(), "B": set()}
        self.new_failures = {"A": 0, "B": 0}
        self._seen: set[str | None] = set()
        self.provenance: list[dict[str, Any]] = []

    # -- the explorer interface the orchestrator uses ----------------------------------------
    def register(self, items: Sequence[dict[str, Any]], cases: Sequence[Case],
                 variants: Sequence[Variant]) -> int:
        count = self.arms["A"].register(items, cases, variants)
        self.arms["B"].register(items, cases, variants)
        return count

    @property
    def active(self) -> bool:
        return any(arm.active for arm in self.arms.values())

    @property
    def exhausted(self) -> bool:
        return not self.active

    @property
    def settled(self) -> bool:
        return all(arm.settled for arm in self.arms.values())

    @property
    def found(self) -> list[dict[str, Any]]:
        return self.arms["A"].found + self.arms["B"].found

    @property
    def cases(self) -> dict[int, Any]:
        return self.arms["A"].cases

    def take(self, count: int | None = None) -> list[tuple[Proposal, Variant]]:
        live = [name for name, arm in self.arms.items() if arm.active]
        if not live:
            return []
        spent = {name: self.arms[name].spent for name in live}
        total = sum(arm.spent for arm in self.arms.values()) or 1
        share = {"A": 1 - self.share_b, "B": self.share_b}
        name = min(live, key=lambda n: (spent[n] / total - share[n], n))
        taken = self.arms[name].take(count)
        if not taken:  # that arm waits on its batch: the other may go on
            other = [n for n in live if n != name]
            if other:
                name = other[0]
                taken = self.arms[name].take(count)
        for event in self.arms[name].provenance:
            event["arm"] = name
        self.provenance.extend(self.arms[name].provenance)
        self.arms[name].provenance = []
        return [(p, v.model_copy(update={"origin": f"{v.origin}@{name}"})) for p, v in taken]

    def task(self, base: int, variant: Variant, reference: dict[str, list[float]] | None = None,
             *, baseline: bool = False, origin: str = "") -> Any:
        """A baseline serves both arms (both rulesets apply); a variant its own arm."""
        arm = origin.rpartition("@")[2]
        if baseline or arm not in self.arms:
            task = self.arms["A"].task(base, variant, reference)
            if task is None:
                return None
            keys = dict.fromkeys(key for arm in self.arms.values() for key in arm.ruleset_keys())
            return replace(task, rulesets=tuple(keys))
        return self.arms[arm].task(base, variant, reference)

    def ruleset_updates(self) -> list[tuple[str, dict[str, Any]]]:
        return [u for arm in self.arms.values() for u in arm.ruleset_updates()]

    def rulesets(self) -> list[tuple[str, dict[str, Any]]]:
        return [r for arm in self.arms.values() for r in arm.rulesets()]

    def observe(self, base: int, variant: Variant, result: Result,
                anomalies: Sequence[dict[str, Any]] = (),
                proposals: Sequence[dict[str, Any]] = ()) -> None:
        origin, _, arm = variant.origin.rpartition("@")
        if variant.origin == "baseline":
            for each in self.arms.values():  # each arm keeps the proposals of its own rules
                each.observe(base, variant, result, anomalies, proposals)
            return
        if arm not in self.arms:
            return
        plain = variant.model_copy(update={"origin": origin})
        self.arms[arm].observe(base, plain, result, anomalies, proposals)
        if origin == "replay":  # a known failure: no arm found it, and it is not new
            if result.outcome.is_failure:
                self._seen.add(result.fingerprint)
            return
        if result.outcome.is_failure:
            self.fingerprints[arm].add(result.fingerprint)
            if result.fingerprint not in self._seen:
                self._seen.add(result.fingerprint)
                self.new_failures[arm] += 1

    def rules_report(self) -> dict[str, dict[str, Any]]:
        return {f"{k} ({name})": v for name, arm in self.arms.items() for k, v in arm.rules_report().items()}

    def flush(self) -> None:
        for arm in self.arms.values():
            arm.flush()

    def minimize_job(self, found: dict[str, Any], max_tests: int) -> Any:
        return self.arms["A"].minimize_job(found, max_tests)

    def summary(self) -> dict[str, Any]:
        a, b = self.arms["A"].summary(), self.arms["B"].summary()
        merged = dict(a)
        merged["budget"] = self.budget.describe()
        merged["executions"] = a["executions"] + b["executions"]
        merged["found"] = a["found"] + b["found"]
        merged["by_origin"] = _merge(a["by_origin"], b["by_origin"])
        merged["rules"] = {**{f"{k} (A)": v for k, v in a["rules"].items()},
                           **{f"{k} (B)": v for k, v in b["rules"].items()}}
        merged["allocation"] = {f"{k} (A)": v for k, v in a["allocation"].items()} | \
            {f"{k} (B)": v for k, v in b["allocation"].items()}
        merged["ab"] = self.comparison()
        return merged

    def verdict_event(self) -> dict[str, Any]:
        """The comparison as an event of the run (kept in the store, shown by ``testfleet show``)."""
        ab = self.comparison()
        return {"kind": "ab", "case_id": "", "variant_id": None, "nodeid": "",
                "message": f"A/B: {ab['verdict']}", **ab}

    def comparison(self) -> dict[str, Any]:
        distinct = {name: len(self.fingerprints[name]) for name in self.arms}
        rate = {name: distinct[name] / arm.spent if arm.spent else 0.0
                for name, arm in self.arms.items()}
        arms = {name: {"ruleset": arm.ruleset_path, "versions": arm.ruleset_versions,
                       "executions": arm.spent, "distinct_failures": distinct[name],
                       "new_distinct_failures": self.new_failures[name],
                       "per_execution": rate[name]}
                for name, arm in self.arms.items()}
        table = [[distinct[x], max(self.arms[x].spent - distinct[x], 0)] for x in ("A", "B")]
        p = float(stats.fisher_exact(table)[1]) if any(sum(row) for row in table) else 1.0
        rate_a, rate_b = rate["A"], rate["B"]
        better = "A" if rate_a > rate_b else "B" if rate_b > rate_a else None
        return {"arms": arms, "p_value": p, "better": better if p < 0.05 else None,
                "replays": sum(arm.replayed for arm in self.arms.values()),
                "verdict": (f"ruleset {better} found more distinct failures per execution "
                            f"(Fisher p={p:.3g})" if better and p < 0.05 else
                            f"no significant difference (Fisher p={p:.3g})")}


def _part(budget: Budget, share: float) -> Budget:
    if budget.executions is not None:
        return Budget(executions=max(1, round(budget.executions * share)))
    return Budget(seconds=budget.seconds)  # time: both arms explore for the whole time, interleaved


def _merge(a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for k, v in b.items():
        slot = out.setdefault(k, {})
        for field, n in v.items():
            slot[field] = slot.get(field, 0) + n
    return out
