"""Unmasking: a point that fails with a failure already known may hide another.

A planted race that fires on a third of the points, or one configuration that always fails,
stops the test at its first assertion; the boundary or the order the point was meant to try
never gets its chance. So when a point from a coverage source (``edge``, ``order``,
``pairwise``, ``random``) fails with a failure the case had shown before, the explorer queues
the same point once more with the known failure's suspects put back to the baseline: the
parameters whose values are the same in every execution that showed that failure so far (one
execution's suspects are all its parameters; each further one narrows them). The copy has origin
``unmask``, a source of its own for the allocation (:mod:`testfleet.execution.allocation`), and
is never unmasked in turn. Pure and deterministic: the same outcomes give the same copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COVERAGE_SOURCES", "Unmasker"]

#: Origins whose points are unmasked when they fail with a known failure.
COVERAGE_SOURCES = frozenset({"edge", "order", "pairwise", "random"})


class Unmasker:
    def __init__(self) -> None:
        #: failure key -> the parameter values every execution that showed it had in common
        self.common: dict[str, dict[str, Any]] = {}

    def observe(self, key: str | None, known: bool, origin: str, params: Mapping[str, Any],
                baseline: Mapping[str, Any]) -> dict[str, Any] | None:
        """Record a failure (``key``; None: it passed) of ``params``; returns the unmasked copy
        to queue, or None. ``known``: the case had shown this failure before."""
        if key is None:
            return None
        before = self.common.get(key)
        shared = dict(params) if before is None else {k: v for k, v in before.items()
                                                       if k in params and params[k] == v}
        self.common[key] = shared
        if not known or before is None or origin not in COVERAGE_SOURCES:
            return None
        suspects = [k for k in shared if k in baseline and baseline[k] != params.get(k)]
        if not suspects or len(suspects) == len(params):
            return None  # nothing to put back, or everything: that is the baseline
        return {**params, **{k: baseline[k] for k in suspects}}
