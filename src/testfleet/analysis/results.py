"""What a failure analysis finds (:func:`testfleet.analysis.correlation.analyze`): per-column
impacts and per-value rates, significant combinations, outcome sensitivity, and the whole
:class:`Analysis` with its JSON form. (Split from ``correlation.py``, which computes them.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from testfleet.analysis.display import to_json
from testfleet.analysis.findings import Condition, Rule
from testfleet.analysis.hypotheses import Hypothesis


@dataclass
class ValueRate:
    """Failures among the executions with one value (or bin) of a column."""

    condition: Condition
    count: int
    failures: int
    rate: float
    p_value: float | None = None   # one-sided Fisher: this value fails more than the rest
    q_value: float | None = None
    elevated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.condition.text, "count": self.count, "failures": self.failures,
                "rate": self.rate, "p_value": self.p_value, "q_value": self.q_value,
                "elevated": self.elevated}


@dataclass
class Impact:
    """One column's association with failure."""

    column: str
    kind: str
    source: str
    status: str                    # "tested" | "constant" | "too many values" | "not tested"
    values: list[ValueRate]
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    effect: float | None = None
    effect_name: str | None = None
    significant: bool = False
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "source": self.source,
                "status": self.status, "test": self.test, "statistic": to_json(self.statistic),
                "p_value": to_json(self.p_value), "q_value": to_json(self.q_value),
                "effect": to_json(self.effect), "effect_name": self.effect_name,
                "significant": self.significant, "note": self.note,
                "details": to_json(self.details), "values": [v.to_dict() for v in self.values]}


@dataclass
class Interaction:
    """A value combination failing more often than each of its parts."""

    conditions: list[Condition]
    count: int
    failures: int
    rate: float
    component_rate: float      # best failure rate among its proper sub-combinations
    lift: float
    p_value: float
    q_value: float
    significant: bool = True

    @property
    def text(self) -> str:
        return " and ".join(c.text for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "order": len(self.conditions),
                "conditions": [c.to_dict() for c in self.conditions], "count": self.count,
                "failures": self.failures, "rate": self.rate,
                "component_rate": self.component_rate, "lift": to_json(self.lift),
                "p_value": self.p_value, "q_value": self.q_value, "significant": self.significant}


@dataclass
class Sensitivity:
    """How much one column moves one numeric outcome."""

    outcome: str
    column: str
    kind: str
    test: str                  # "kruskal-wallis" | "spearman"
    statistic: float
    p_value: float
    effect: float              # epsilon squared | |rho|
    effect_name: str
    executions: int
    rho: float | None = None   # Spearman's signed rho
    q_value: float = 1.0
    significant: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: to_json(getattr(self, k)) for k in (
            "outcome", "column", "kind", "test", "statistic", "p_value", "q_value", "effect",
            "effect_name", "rho", "executions", "significant")}


@dataclass
class Analysis:
    executions: int
    failures: int
    fdr: float
    not_enough_data: str | None
    impacts: list[Impact]
    interactions: list[Interaction]
    rules: list[Rule]
    sensitivity: dict[str, list[Sensitivity]]
    tested_combinations: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    sparse: list[Interaction] = field(default_factory=list)   # below MIN_SUPPORT: notes
    small_rules: list[Rule] = field(default_factory=list)     # below MIN_SUPPORT: notes
    hypotheses: list[Hypothesis] = field(default_factory=list)  # from guided executions
    design: dict[str, Any] = field(default_factory=dict)       # what the tests were drawn from

    @property
    def failure_rate(self) -> float:
        return self.failures / self.executions if self.executions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"executions": self.executions, "failures": self.failures,
                "failure_rate": self.failure_rate, "fdr": self.fdr,
                "not_enough_data": self.not_enough_data,
                "impacts": [i.to_dict() for i in self.impacts],
                "interactions": [i.to_dict() for i in self.interactions],
                "rules": [r.to_dict() for r in self.rules],
                "sensitivity": {k: [s.to_dict() for s in v] for k, v in self.sensitivity.items()},
                "tested_combinations": self.tested_combinations, "notes": list(self.notes),
                "sparse_interactions": [
                    {"text": i.text, "count": i.count, "failures": i.failures, "rate": i.rate,
                     "component_rate": i.component_rate} for i in self.sparse],
                "small_rules": [r.to_dict() for r in self.small_rules],
                "hypotheses": [h.to_dict() for h in self.hypotheses],
                "design": to_json(self.design),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}
