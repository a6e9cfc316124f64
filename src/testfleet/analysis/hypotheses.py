"""What guided executions suggest: hypotheses with their counts, never significant findings.

``analyze`` runs twice when a run explored: on the design executions (the tests that count) and
on all executions. A rule of the second that the first did not find is a *hypothesis*: guided
variants were chosen near failures, so their counts cannot carry a test, but they say where to
look. Each lists how many executions match it and fail, split into design and guided ones, so a
reader sees whether the design saw any of it; ``testfleet analyze --confirm`` tests them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from testfleet.analysis.design import source_counts
from testfleet.analysis.findings import Rule
from testfleet.analysis.frame import AnalysisFrame


@dataclass
class Hypothesis:
    rule: Rule                          # fitted on all executions: counts are descriptive
    design: tuple[int, int]             # (executions, failures) among design executions
    guided: tuple[int, int]             # (executions, failures) among guided executions
    sources: dict[str, list[int]] = field(default_factory=dict)   # guided source -> counts

    @property
    def text(self) -> str:
        conditions = " and ".join(c.text for c in self.rule.conditions)
        return (f"fails when {conditions}? {self.rule.failures} of {self.rule.support} "
                f"executions failed (design {self.design[1]}/{self.design[0]}, "
                f"guided {self.guided[1]}/{self.guided[0]})")

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "conditions": [c.to_dict() for c in self.rule.conditions],
                "support": self.rule.support, "failures": self.rule.failures,
                "design": {"executions": self.design[0], "failures": self.design[1]},
                "guided": {"executions": self.guided[0], "failures": self.guided[1]},
                "guided_sources": self.sources, "status": "hypothesis"}


def hypotheses(frame: AnalysisFrame, design: np.ndarray, found: list[Rule],
               suggested: list[Rule]) -> list[Hypothesis]:
    """The rules in ``suggested`` (from all executions) that ``found`` (from the design) lacks:
    a rule on the same parameters in the same form (``threads>8`` where the design found
    ``threads>7``, the cut fitted to other data) is not new."""
    known = {tuple(sorted((c.column, c.op) for c in r.conditions)) for r in found}
    out = []
    for rule in suggested:
        if tuple(sorted((c.column, c.op) for c in rule.conditions)) in known:
            continue
        mask = rule.mask(frame)
        inside, guided = mask & design, mask & ~design
        out.append(Hypothesis(rule, (int(inside.sum()), int(frame.failed[inside].sum())),
                              (int(guided.sum()), int(frame.failed[guided].sum())),
                              source_counts(frame, guided)))
    return out
