"""Which proposal source gets a case's next explored execution: Thompson sampling over the
sources' measured yield, instead of fixed shares.

Each explorable case keeps, per source (``edge``, ``order``, ``pairwise``, ``random``,
``mutation``, ``anomaly``, ``rule:NAME``), a Beta posterior of the chance that one execution the
source proposes reveals a failure the case had not shown before (a failure seen again is worth
nothing: it is known, the minimiser maps it). The prior is weak, :data:`PRIOR_WEIGHT`
pseudo-executions at the mean :data:`PRIOR_YIELD` gives the source (a rule's rises with its
``priority``), so a few executions outweigh it. Each choice draws one sample per source that
has a proposal waiting and takes the largest: a source that keeps finding nothing loses share,
one that finds new failures gains it, and every source keeps a chance that shrinks only as its own evidence grows.

Draws come from a generator seeded by the run seed and the case, and feedback is applied in
dispatch order (see :meth:`Explorer.take`): the same seed and the same outcomes give the same
choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["PRIOR_WEIGHT", "PRIOR_YIELD", "SourceBandit", "SourceStats", "family_of", "rule_prior"]

#: Prior mean yield of a source (new failures per execution) before it ran anything. Boundaries
#: and a failure's neighbours find defects more often than a random point, which finds more than
#: nothing; these only order the first executions.
PRIOR_YIELD = {"edge": 0.25, "order": 0.2, "mutation": 0.2, "unmask": 0.2, "anomaly": 0.15,
               "rule": 0.15, "pairwise": 0.12, "random": 0.1}
#: How many executions the prior counts for.
PRIOR_WEIGHT = 2.0
_DEFAULT_YIELD = 0.1


def rule_prior(priority: float) -> float:
    """A rule's prior yield from its ``priority`` (default 1): the writer's "higher first"
    as a better start in the allocation, 0.15 at priority 1 and 0.05 more per step."""
    return PRIOR_YIELD["rule"] + 0.05 * (float(priority) - 1)


def family_of(source: str) -> str:
    """``rule:Bigger`` -> ``rule``; every other source is its own family."""
    return source.split(":", 1)[0]


@dataclass
class SourceStats:
    """What one source did for one case: executions, new failures, and the Beta posterior."""

    executions: int = 0
    found: float = 0.0  # rewards: new distinct failures (1 each)
    prior_mean: float = _DEFAULT_YIELD

    @property
    def alpha(self) -> float:
        return self.prior_mean * PRIOR_WEIGHT + self.found

    @property
    def beta(self) -> float:
        return (1 - self.prior_mean) * PRIOR_WEIGHT + max(0.0, self.executions - self.found)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class SourceBandit:
    """Thompson sampling over the sources of one case."""

    def __init__(self, seed: int, priors: dict[str, float] | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.priors = dict(PRIOR_YIELD if priors is None else priors)
        self.stats: dict[str, SourceStats] = {}
        self.choices = 0

    def source(self, source: str) -> SourceStats:
        found = self.stats.get(source)
        if found is None:
            prior = self.priors.get(source, self.priors.get(family_of(source), _DEFAULT_YIELD))
            found = self.stats[source] = SourceStats(prior_mean=prior)
        return found

    def set_prior(self, source: str, mean: float) -> None:
        """The prior mean of a source that has not run yet (a rule's, from its priority)."""
        if source not in self.stats:
            self.stats[source] = SourceStats(prior_mean=min(0.9, max(0.01, mean)))

    def choose(self, available: Iterable[str]) -> str | None:
        """The source whose posterior draw is largest among ``available`` (None: none is).
        The candidates are sorted first, so their order does not change the choice."""
        candidates = sorted(set(available))
        if not candidates:
            return None
        self.choices += 1
        if len(candidates) == 1:
            return candidates[0]
        draws = [self.rng.beta(self.source(s).alpha, self.source(s).beta) for s in candidates]
        return candidates[int(np.argmax(draws))]

    def record(self, source: str, reward: float) -> None:
        """One execution of ``source`` came back: ``reward`` 1 when it revealed a new failure."""
        stats = self.source(source)
        stats.executions += 1
        stats.found += min(1.0, max(0.0, reward))

    def summary(self) -> dict[str, dict[str, float]]:
        return {source: {"executions": s.executions, "new_failures": s.found,
                         "posterior_mean": round(s.mean, 4)}
                for source, s in sorted(self.stats.items()) if s.executions}
