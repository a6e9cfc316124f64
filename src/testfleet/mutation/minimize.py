"""Minimise a failing variant: the smallest set of parameter changes from the baseline that
still fails, each change moved as close to the baseline as it can go.

The search assumes the failure is monotone (more change, more failure), as delta debugging
does, and ends *1-minimal*: undoing any one change, or taking any one simplification step on
any changed value, passes.

1. **Which parameters.** The changes between ``baseline`` and ``failing`` (a key whose value
   differs, or that only one side has: an absent key is :data:`MISSING`) are reduced with
   Zeller's *ddmin* (split into n parts, try each part, then each complement, then double n)
   to a 1-minimal set: applying any proper subset to the baseline passes.
2. **How far.** Each remaining change is then simplified, one parameter at a time, in the order
   the parameters first appear (:mod:`testfleet.mutation.shrink`):

   - numbers (int / float, not bool; sizes and durations too) move toward the baseline value:
     the special values between the two ends (``2^k`` and ``10^k``, each +-1) are searched
     first, then the rest of the interval is bisected. Integers, and floats declared with a
     step, stay on their dimension's grid (``min + k * step``) and end exactly next to the
     boundary (``2147483648``, not a value near it); other floats stop when the interval is
     below ``tolerance`` (default ``max(1e-9, 1e-6 * |range|)``, the dimension's range or else
     the distance between the two values) and then take the shortest decimal inside it that
     still fails. One step (or less than ``tolerance``) further toward the baseline passes.
   - texts (a String dimension's, or any text when no space is given) shrink: the empty text
     if it fails, else chunks and then single characters are deleted while it still fails,
     then each character that is not a plain letter or digit is replaced by ``a`` (``0``
     where the space refuses ``a``) while it still fails. A 1,242 character text that fails
     because of one combining mark ends as that mark alone.
   - orders (a :class:`Permutation`, or a list holding the baseline's items in another order)
     are repaired greedily: position by position, the item the baseline has there is swapped
     back into place, and the swap is kept while the test still fails; passes repeat until no
     swap is kept.
   - other lists longer than the baseline's are shortened by ddmin over their elements, never
     below the baseline's length (nor below one element).
   - dicts (a configuration block or JSON body held in one parameter) keep only the keys whose
     change still matters: ddmin over the keys that differ, the rest back to the baseline's.
3. **Again until nothing changes.** Each remaining key is set back to its baseline value once
   more (a simpler value elsewhere can make a key unnecessary) and every value simplified
   again; rounds repeat until one keeps nothing. Known answers are cached, so a round that
   changes nothing costs only the candidates it has not seen.

Every candidate is ``{**baseline, **changes}`` with a change to MISSING removing the key. With a
``space``, candidates outside it (``space.is_valid``) count as passing and are not executed.
``still_fails`` answers True (fails), False (passes) or None (could not tell: counted, and
treated as passing). The baseline is assumed to pass and ``failing`` to fail; neither is run.
Answers are cached by a canonical JSON key, so no candidate runs twice. When ``max_tests``
executions are spent the search stops and returns the smallest failing candidate found so far
with ``complete=False``. Pure and deterministic: the same inputs and answers give the same
candidates in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from testfleet.mutation.shrink import (
    ddmin,
    repair_order,
    shrink_float,
    shrink_grid,
    shrink_dict,
    shrink_list,
    shrink_text,
)
from testfleet.space.composite import Optional, Permutation
from testfleet.space.dimensions import Dimension, Float, Int
from testfleet.space.expressions import MISSING
from testfleet.space.space import Space
from testfleet.space.text import String

ABSENT = "<absent>"

__all__ = ["ABSENT", "Minimized", "canonical_key", "changed", "ddmin", "minimize"]


@dataclass(frozen=True)
class Minimized:
    """The outcome of :func:`minimize`."""

    params: dict[str, Any]
    """The minimal failing parameters (a full point: baseline plus the minimal changes)."""
    changes: dict[str, tuple[Any, Any]]
    """name -> (baseline value, minimal value); MISSING where the key is absent."""
    executions: int
    """How many times ``still_fails`` was called."""
    complete: bool
    """False when ``max_tests`` ran out before the search finished."""
    steps: list[tuple[dict[str, Any], bool | None]] = field(default_factory=list)
    """Every executed candidate with its answer, in order (provenance)."""
    undecided: int = 0
    """How many answers were None (flaky, crashed), treated as passes."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "changes": {name: [_shown(old), _shown(new)]
                        for name, (old, new) in self.changes.items()},
            "executions": self.executions,
            "complete": self.complete,
            "undecided": self.undecided,
            "steps": [{"params": dict(c), "outcome": o} for c, o in self.steps],
        }


def _shown(value: Any) -> Any:
    return ABSENT if value is MISSING else value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


def canonical_key(params: dict[str, Any]) -> str:
    """A stable text for a point: equal points (key order aside) give equal keys."""
    return json.dumps(params, sort_keys=True, default=_json_default)


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return json.dumps(a, sort_keys=True, default=_json_default) \
        == json.dumps(b, sort_keys=True, default=_json_default)


def changed(baseline: dict[str, Any], params: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """name -> (baseline value, value in params) for every key that differs; MISSING marks a
    key present on one side only. Baseline keys come first, in their order."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in [*baseline, *(k for k in params if k not in baseline)]:
        old, new = baseline.get(name, MISSING), params.get(name, MISSING)
        if not _same(old, new):
            out[name] = (old, new)
    return out


def _apply(baseline: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(baseline)
    for name, value in changes.items():
        if value is MISSING:
            out.pop(name, None)
        else:
            out[name] = value
    return out


class _OutOfBudget(Exception):
    pass


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_reordering(a: Any, b: Any) -> bool:
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        return False
    keys = sorted(canonical_key({"v": x}) for x in a)
    return keys == sorted(canonical_key({"v": x}) for x in b)


class _Search:
    def __init__(self, baseline: dict[str, Any], failing: dict[str, Any],
                 still_fails: Callable[[dict[str, Any]], bool | None], space: Space | None,
                 max_tests: int, tolerance: float | None) -> None:
        self.baseline, self.still_fails, self.space = baseline, still_fails, space
        self.max_tests, self.tolerance = max_tests, tolerance
        self.changes = {name: new for name, (_, new) in changed(baseline, failing).items()}
        self.best = _apply(baseline, self.changes)
        self.cache: dict[str, bool] = {canonical_key(baseline): False,
                                       canonical_key(self.best): True}
        self.steps: list[tuple[dict[str, Any], bool | None]] = []
        self.executions = self.undecided = 0

    # -- the one place a candidate is judged -------------------------------------------------
    def fails(self, changes: dict[str, Any]) -> bool:
        """Whether baseline + changes fails. Every search step accepts a failing candidate at
        once, so the last failing candidate is always the best one found."""
        candidate = _apply(self.baseline, changes)
        key = canonical_key(candidate)
        if key not in self.cache:
            if self.space is not None and not self.space.is_valid(candidate):
                self.cache[key] = False
            else:
                if self.executions >= self.max_tests:
                    raise _OutOfBudget
                self.executions += 1
                outcome = self.still_fails(dict(candidate))
                if outcome is None:
                    self.undecided += 1
                self.steps.append((candidate, outcome))
                self.cache[key] = bool(outcome)
        if self.cache[key]:
            self.best = candidate
            self.changes = dict(changes)
        return self.cache[key]

    def with_value(self, name: str, value: Any) -> bool:
        return self.fails({**self.changes, name: value})

    def without(self, name: str) -> bool:
        return self.fails({k: v for k, v in self.changes.items() if k != name})

    # -- phases --------------------------------------------------------------------------------
    def run(self) -> None:
        every = dict(self.changes)
        names = ddmin(list(every), lambda keep: self.fails({k: every[k] for k in keep}))
        self.changes = {k: every[k] for k in names}
        settled: dict[str, str] = {}  # name -> the point it was last simplified in
        while True:  # until a whole round keeps nothing: 1-minimal for every kind of step
            before = canonical_key(self.best)
            for name in list(self.changes):
                if name in self.changes:
                    self.without(name)  # back to the baseline, now that the others are simpler
            for name in list(self.changes):
                # simplified again only when another value moved since (an unchanged point
                # would only repeat known answers, or ask new ones of a finished bisection)
                if name in self.changes and settled.get(name) != canonical_key(self.best):
                    self._simplify(name)
                    settled[name] = canonical_key(self.best)
            if canonical_key(self.best) == before:
                return

    def _simplify(self, name: str) -> None:
        old, new = self.baseline.get(name, MISSING), self.changes[name]
        dim = self._dimension(name)
        probe = partial(self.with_value, name)
        if _is_number(old) and _is_number(new):
            self._numeric(probe, _plain(old), _plain(new), dim)
        elif _is_reordering(old, new):
            repair_order(probe, list(new), list(old), _same)
        elif isinstance(new, str) and (dim is None or isinstance(dim, String)):
            # a text, not one of a choice's values (those have nothing simpler but the baseline)
            shrink_text(probe, new, allowed=None if self.space is None else
                        lambda text: self.space.is_valid(_apply(  # type: ignore[union-attr]
                            self.baseline, {**self.changes, name: text})))
        elif isinstance(new, list) and not isinstance(dim, Permutation):
            shrink_list(probe, list(new), len(old) if isinstance(old, list) else 1)
        elif isinstance(new, dict) and isinstance(old, dict):
            shrink_dict(probe, old, new, _same)

    def _dimension(self, name: str) -> Dimension | None:
        dim = self.space.dimensions.get(name) if self.space is not None else None
        while isinstance(dim, Optional):
            dim = dim.inner
        return dim

    def _numeric(self, probe: Callable[[Any], bool], old: Any, new: Any,
                 dim: Dimension | None) -> None:
        if isinstance(dim, Int):
            shrink_grid(probe, old, new, dim.min, dim.step, exact=True)
        elif isinstance(dim, Float) and dim.step:
            shrink_grid(probe, old, new, dim.min, dim.step, exact=False)
        elif isinstance(dim, Float):
            shrink_float(probe, float(old), float(new), self._tolerance(dim.max - dim.min))
        elif isinstance(old, int) and isinstance(new, int):
            shrink_grid(probe, old, new, old, 1, exact=True)
        else:
            shrink_float(probe, float(old), float(new), self._tolerance(abs(new - old)))

    def _tolerance(self, span: float) -> float:
        return self.tolerance if self.tolerance is not None else max(1e-9, 1e-6 * abs(span))


def minimize(baseline: dict[str, Any], failing: dict[str, Any],
             still_fails: Callable[[dict[str, Any]], bool | None], *,
             space: Space | None = None, max_tests: int = 200,
             tolerance: float | None = None) -> Minimized:
    """The smallest variant of ``failing`` (fewest changes from ``baseline``, each as near the
    baseline as it fails) for which ``still_fails`` still answers True. See the module text."""
    search = _Search(baseline, failing, still_fails, space, max_tests, tolerance)
    complete = True
    try:
        search.run()
    except _OutOfBudget:
        complete = False
    return Minimized(params=search.best, changes=changed(baseline, search.best),
                     executions=search.executions, complete=complete, steps=search.steps,
                     undecided=search.undecided)
