"""The mutation engine: it runs in each worker, next to the telemetry, and turns one execution
of an explorable case into scored proposals for the coordinator.

Approach. The coordinator sends every explorable item with an :class:`ExploreTask`: the case's
seed and baseline, the ruleset(s) to apply, the case's telemetry reference (per watched metric:
median, spread and threshold, from the fleet's anomaly watch) and ``room``, how many proposals
the case's budget still allows. Right after the item runs, the worker hands its outcome and its
fresh telemetry summary to :meth:`MutationEngine.propose`, which

* fires every rule of the ruleset that applies to the case and whose trigger holds on that
  telemetry (the trigger's values are kept as provenance), proposing the rule's values for its
  target parameter, all else kept;
* mutates around the execution when it failed (3 values per parameter, and halfway back to the
  baseline for numbers), or when one of its metrics is an anomaly against the case's reference;
* scores each (:data:`BASE_SCORES`: a failure's neighbours 4, +1 when it was also anomalous; an
  anomaly's 3 + robust z / 20; a rule's 2 + priority / 2) and keeps the ``room`` best.

The proposals travel back in the result; the coordinator deduplicates them by variant id, never
reruns a known variant, re-scores them with what the whole fleet has seen (a rule's yield, how
often a failure or an anomaly recurred) and spends the budget. Every random choice is drawn from
a generator seeded by the case's seed and the executed variant's id, so the same seed and the
same outcomes give the same proposals on whichever worker the execution ran.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from testfleet.space.space import Space

__all__ = ["BASE_SCORES", "Execution", "ExploreTask", "MutationEngine", "failure_key", "nearness"]

BASE_SCORES = {"mutation": 4.0, "anomaly": 3.0, "rule": 2.0}
NEIGHBOURS = 3  # values tried per parameter around a failing or anomalous execution
RULE_VALUES = 4  # values a fired rule proposes per execution


def failure_key(fingerprint: str | None, message: str | None) -> str:
    """Which failure this is: where it raised and its first message line with numbers blanked
    (one assertion line can report different defects)."""
    text = (message or "").strip()
    first = text.splitlines()[0] if text else ""
    return f"{fingerprint}|{re.sub(r'[0-9]+', 'N', first)[:120]}"


def nearness(reference: Mapping[str, Sequence[float]], summary: Mapping[str, Any] | None,
             duration: float | None) -> list[tuple[str, float, float]]:
    """The watched metrics of one execution that are anomalies against the case's reference
    (``metric -> [median, sigma, threshold]``): ``(metric, value, robust z)``, largest z first."""
    from testfleet.telemetry.monitor import judged

    out = []
    for metric, stats in judged(summary or {}, duration).items():
        ref = reference.get(metric)
        if not ref or len(ref) < 3:
            continue
        median, sigma, threshold = (float(x) for x in ref[:3])
        if not (math.isfinite(median) and sigma > 0):
            continue
        z = (stats["v"] - median) / sigma
        if z >= threshold:
            out.append((metric, stats["v"], z))
    return sorted(out, key=lambda entry: (-entry[2], entry[0]))


@dataclass(frozen=True)
class ExploreTask:
    """What the coordinator sends with an explorable item (plain data: it is pickled)."""

    variant_id: str  # of this execution
    case_seed: int
    baseline: dict[str, Any]
    params: dict[str, Any]  # the explored values of this execution (the baseline's for a baseline)
    room: int  # proposals the case's budget still allows
    rulesets: tuple[str, ...] = ()  # keys of the rulesets to apply (an A/B run sends its arm's)
    reference: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """What the worker measured: the execution's verdict and its telemetry."""

    failed: bool
    fingerprint: str | None = None
    message: str = ""
    telemetry: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None


class MutationEngine:
    """One per worker: holds the rulesets the coordinator sent, proposes per execution."""

    def __init__(self) -> None:
        self.rulesets: dict[str, Any] = {}  # key (the ruleset's path) -> Ruleset
        self._spaces: dict[int, Space | None] = {}

    def set_ruleset(self, key: str, data: Mapping[str, Any]) -> None:
        """A ruleset version from the coordinator (sent at start and whenever the file changes)."""
        from testfleet.mutation.rules import ruleset_from_data

        self.rulesets[key] = ruleset_from_data(dict(data), source=key)

    def space(self, base: int, declared: Callable[[], Mapping[str, Any] | None], nodeid: str) -> Space | None:
        """The case's space, rebuilt once per item from its declaration (None: it has none)."""
        if base not in self._spaces:
            from testfleet.space.declare import space_from_dict

            data = declared()
            self._spaces[base] = None if data is None else space_from_dict(dict(data), source=nodeid)
        return self._spaces[base]

    def propose(self, nodeid: str, space: Space, task: ExploreTask, outcome: Execution) -> list[dict[str, Any]]:
        """Scored proposals after one execution, at most ``task.room``, best first."""
        if task.room <= 0:
            return []
        from testfleet.model import stable_id

        rng = np.random.default_rng(int(stable_id("mutate", task.case_seed, task.variant_id)[:12], 16))
        params = {k: v for k, v in task.params.items() if k in space.dimensions}
        out: list[dict[str, Any]] = []
        anomalies = nearness(task.reference, outcome.telemetry, outcome.duration)
        for key in task.rulesets:
            ruleset = self.rulesets.get(key)
            if ruleset is not None:
                out += self._rules(ruleset, key, nodeid, space, task, params, outcome, rng)
        if outcome.failed:
            key = failure_key(outcome.fingerprint, outcome.message)
            out += self._neighbours(space, task, params, rng, "mutation",
                                    BASE_SCORES["mutation"] + (1.0 if anomalies else 0.0),
                                    {"parent_outcome": "failed", "message": outcome.message[:200],
                                     "failure": key, "anomalous": bool(anomalies)})
        elif anomalies:
            z = anomalies[0][2]
            out += self._neighbours(space, task, params, rng, "anomaly",
                                    BASE_SCORES["anomaly"] + min(1.0, z / 20.0),
                                    {"anomalies": [f"{m} {v:.4g} (robust z {s:.1f})" for m, v, s in anomalies[:3]],
                                     "metrics": sorted(m for m, _v, _s in anomalies), "z": z})
        out.sort(key=lambda p: -p["score"])  # stable: equal scores keep their generation order
        return _distinct(out, space, task.baseline)[:task.room]

    def _rules(self, ruleset: Any, key: str, nodeid: str, space: Space, task: ExploreTask,
               params: dict[str, Any], outcome: Execution, rng: np.random.Generator) -> list[dict[str, Any]]:
        from testfleet.mutation.operators import propose

        out = []
        for rule in ruleset.for_case(nodeid):
            dim = space.dimensions.get(rule.target_parameter)
            if dim is None or not rule.triggered(outcome.telemetry, outcome.duration):
                continue
            seen = rule.trigger.values(outcome.telemetry, outcome.duration) if rule.trigger else {}
            current = params.get(rule.target_parameter, task.baseline.get(rule.target_parameter))
            for value in propose(rule, dim, current, rng, count=RULE_VALUES):
                out.append({"params": {**params, rule.target_parameter: value}, "origin": rule.origin,
                            "score": BASE_SCORES["rule"] + 0.5 * rule.priority, "ruleset": key,
                            "provenance": {"rule": rule.mutation_name, "priority": rule.priority,
                                           "trigger": rule.trigger_condition, "trigger_values": seen,
                                           "ruleset_version": ruleset.version}})
        return out

    @staticmethod
    def _neighbours(space: Space, task: ExploreTask, params: dict[str, Any], rng: np.random.Generator,
                    origin: str, score: float, provenance: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for name, dim in space.dimensions.items():
            current = params.get(name, task.baseline.get(name))
            candidates = list(dim.sample(rng, NEIGHBOURS))
            base_value = task.baseline.get(name)
            if _numeric(current) and _numeric(base_value) and current != base_value:
                halfway = (current + base_value) / 2
                candidates.append(type(current)(round(halfway)) if isinstance(current, int) else halfway)
            for value in candidates:
                value = value.item() if hasattr(value, "item") else value
                if isinstance(value, np.ndarray):
                    value = value.tolist()
                if value == current or not dim.contains(value):
                    continue
                out.append({"params": {**params, name: value}, "origin": origin, "score": score,
                            "ruleset": None, "provenance": {**provenance, "changed": name}})
        return out


def _distinct(proposals: list[dict[str, Any]], space: Space, baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Drop proposals outside the space's constraints and repeats of the same point (the
    first, best-scored one stays)."""
    seen: set[str] = set()
    out = []
    for proposal in proposals:
        clean = {k: v for k, v in proposal["params"].items()
                 if k in space.dimensions and type(v).__name__ != "_Missing"}
        if space.violations({**baseline, **clean}):
            continue
        key = repr(sorted(clean.items(), key=lambda kv: kv[0]))
        if key in seen:
            continue
        seen.add(key)
        out.append({**proposal, "params": clean})
    return out


def _numeric(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
