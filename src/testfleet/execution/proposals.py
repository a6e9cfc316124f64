"""What the explorer works with: budgets, scored proposals, the per-case state (one heap of
waiting proposals per source, and the bandit that shares the case's executions between them;
see :mod:`testfleet.execution.explorer` for how they are used).

Within a source, proposals go by score (``SCORES``, and :func:`fresh_score` for guided ones):

=================================  ======================================================
source (``origin``)                score within the source
=================================  ======================================================
``replay`` (failed in a past run)  10, before any other source
``mutation`` (near a failure)      4 + 1 when it was also anomalous − 0.5 per earlier
                                   failure with the same key (at least 0.5)
``anomaly`` (near an anomaly)      3 + robust z / 20 (at most 1) − 0.5 per earlier anomaly of the
                                   same metrics (at least 0.5)
``rule:NAME`` (its trigger held)   2 + priority / 2 (its source's prior yield rises with it)
``edge``, ``order``, ``pairwise``  generation order
``random``                         generation order
=================================  ======================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from testfleet.errors import UsageError
from testfleet.execution.allocation import SourceBandit
from testfleet.model import Case
from testfleet.mutation.engine import BASE_SCORES
from testfleet.space.space import Space

__all__ = ["SCORES", "Budget", "CaseState", "Proposal", "fresh_score"]

SCORES = {"replay": 10.0, **BASE_SCORES, "edge": 2.0, "pairwise": 1.5, "random": 1.0}
MAX_ROOM = 32  # proposals one execution may send back at most (less when the case's budget is low)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", re.ASCII)


@dataclass(frozen=True)
class Budget:
    """``--explore``: a number of executions, or a time (``90s``, ``2m``, ``1h30m``)."""

    executions: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        value = str(text).strip().lower()
        if value.isascii() and value.isdigit():  # not '²', which isdigit() accepts
            if int(value) < 1:
                raise UsageError(f"--explore {text}: expected at least 1 execution",
                                 place="--explore", expected="a count such as 500, or a time such as 2m")
            return cls(executions=int(value))
        match = _DURATION.fullmatch(value)
        if value and match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            seconds = h * 3600 + m * 60 + s
            if seconds > 0:
                return cls(seconds=seconds)
        raise UsageError(f"--explore {text!r} is neither a number of executions nor a time",
                         place="--explore", expected="a count such as 500, or a time such as 90s, 2m, 1h30m")

    def describe(self) -> str:
        if self.executions is not None:
            return f"{self.executions} executions"
        return f"{self.seconds:g} s"


@dataclass(order=True)
class Proposal:
    sort_key: tuple[float, int] = field(init=False, repr=False)
    score: float
    base: int  # the index of the case's collected item
    params: dict[str, Any] = field(compare=False)
    origin: str = field(compare=False)
    parent_id: str | None = field(default=None, compare=False)
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    order: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.sort_key = (-self.score, self.order)


@dataclass
class CaseState:
    base: int
    case: Case
    space: Space
    fixed: dict[str, Any]  # parametrize arguments that are not explored
    baseline: dict[str, Any]
    seed: int
    bandit: SourceBandit
    rounds: Any = None  # the generator of this case's next coverage proposals (None: used up)
    ran: list[dict[str, Any]] = field(default_factory=list)
    heaps: dict[str, list[Proposal]] = field(default_factory=dict)  # source -> waiting proposals
    failures: set[str] = field(default_factory=set)  # failure keys this case has shown
    last_config: str | None = None  # the SUT configuration of its last dispatched variant

    def waiting(self) -> list[str]:
        """The sources with a proposal waiting."""
        return [source for source, heap in self.heaps.items() if heap]


def pair_coverage(state: CaseState) -> dict[str, float]:
    """Pairwise coverage of the case's space by the baseline alone, and by all that ran."""
    from testfleet.space.coverage import measure

    space = state.space
    if len(space) < 2:
        return {}
    rows = space.levels_of(state.ran)
    rows = rows[(rows >= 0).all(axis=1)]
    if not len(rows):
        return {}
    levels = space.level_counts()
    oracle = space.oracle()
    before = measure(levels, rows[:1], 2, oracle=oracle).simple
    after = measure(levels, rows, 2, oracle=oracle).simple
    return {"before": before, "after": after}


def fresh_score(origin: str, provenance: dict[str, Any], failures_seen: dict[Any, int],
                anomalies_seen: dict[Any, int]) -> float | None:
    """The score a guided proposal would get now, given how often its failure or anomaly has
    been seen since (None: scores of its kind never change)."""
    if origin == "mutation" and "failure" in provenance:
        seen = failures_seen.get(provenance["failure"], 1)
        return max(0.5, SCORES["mutation"] + (1.0 if provenance.get("anomalous") else 0.0) - 0.5 * (seen - 1))
    if origin == "anomaly" and "metrics" in provenance:
        seen = anomalies_seen.get(tuple(provenance["metrics"]), 1)
        z = float(provenance.get("z") or 0.0)
        return max(0.5, SCORES["anomaly"] + min(1.0, z / 20.0) - 0.5 * (seen - 1))
    return None
