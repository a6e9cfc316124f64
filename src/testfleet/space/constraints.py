"""Constraints over a space's parameters: parsing, checking, and a small constraint search.

A constraint is an expression of :mod:`testfleet.space.expressions` that must hold at every
valid point. The search works on finite *domains*: each constrained parameter's level values
plus the constants that constraints compare it with (so ``port == 8443`` is findable even when
8443 is no level). It answers two questions:

- :meth:`Solver.consistent` -- can this partial assignment of levels be completed into a valid
  point? Only parameters connected to the assigned ones through constraints are searched, and
  answers are cached, so covering arrays and coverage can ask it for every t-tuple.
- :func:`find_conflict` -- when nothing satisfies the constraints, which constraints conflict?
  Deletion filtering shrinks the set to a minimal conflicting one, which the error names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from testfleet.space.expressions import Expression

#: Search nodes one consistency question may visit before the answer is taken as "yes"
#: (full rows are always checked exactly, so a wrong "yes" costs a retry, never a bad row).
NODE_BUDGET = 100_000


@dataclass(frozen=True)
class Constraint:
    text: str
    expression: Expression

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    def holds(self, point: Mapping[str, Any]) -> bool:
        return self.expression.holds(point)


class Solver:
    """Backtracking search over finite domains (value lists) for a set of constraints."""

    def __init__(self, names: Sequence[str], domains: Sequence[Sequence[Any]],
                 constraints: Sequence[Constraint]) -> None:
        self.names = list(names)
        self.domains = [list(d) for d in domains]
        self.constraints = list(constraints)
        index = {name: i for i, name in enumerate(self.names)}
        self.scopes = [frozenset(index[n] for n in c.names) for c in self.constraints]
        self.by_var: dict[int, list[int]] = {}
        for ci, scope in enumerate(self.scopes):
            for var in scope:
                self.by_var.setdefault(var, []).append(ci)
        self._cache: dict[tuple[Any, ...], bool] = {}

    def _component(self, seeds: Sequence[int]) -> list[int]:
        """Variables linked to ``seeds`` through constraints (constraint-free ones need no search)."""
        seen, todo = set(), [v for v in seeds if v in self.by_var]
        while todo:
            var = todo.pop()
            if var in seen:
                continue
            seen.add(var)
            for ci in self.by_var.get(var, ()):
                todo.extend(self.scopes[ci] - seen)
        return sorted(seen, key=lambda v: -len(self.by_var.get(v, ())))

    def _violated(self, values: dict[int, Any], var: int) -> bool:
        env = None
        for ci in self.by_var.get(var, ()):
            if self.scopes[ci] <= values.keys():
                if env is None:
                    env = {self.names[v]: values[v] for v in values}
                if not self.constraints[ci].holds(env):
                    return True
        return False

    def solve(self, fixed: Mapping[int, Any], *, prefer: Mapping[int, Any] | None = None,
              only: Sequence[int] | None = None) -> dict[int, Any] | None:
        """Values for the constrained variables linked to ``fixed`` (or ``only``) satisfying every
        constraint among them, preferring ``prefer`` values first; None when there are none."""
        values = dict(fixed)
        for var in values:
            if self._violated(values, var):
                return None
        free = [v for v in (only if only is not None else self._component(list(fixed)))
                if v not in values]
        budget = [NODE_BUDGET]

        def domain(var: int) -> list[Any]:
            options = self.domains[var]
            if prefer and var in prefer:
                return [prefer[var], *(o for o in options if o != prefer[var])]
            return options

        def assign(i: int) -> bool:
            if i == len(free):
                return True
            var = free[i]
            for value in domain(var):
                budget[0] -= 1
                if budget[0] < 0:
                    return False
                values[var] = value
                if not self._violated(values, var) and assign(i + 1):
                    return True
            del values[var]
            return False

        return values if assign(0) else None

    def consistent(self, fixed: Mapping[int, Any]) -> bool:
        key = tuple(sorted(fixed.items(), key=lambda kv: kv[0]))
        try:
            return self._cache[key]
        except (KeyError, TypeError):
            pass
        answer = self.solve(fixed) is not None
        try:
            self._cache[key] = answer
        except TypeError:  # unhashable values (lists): answer without caching
            pass
        return answer

    def satisfiable(self) -> bool:
        return self.solve({}, only=self._component(list(self.by_var))) is not None


def constants_by_name(constraints: Sequence[Constraint]) -> dict[str, list[Any]]:
    """Constants that constraints compare a parameter with directly (``port == 8443``)."""
    found: dict[str, list[Any]] = {}

    def walk(tree: tuple[Any, ...]) -> None:
        if tree[0] == "compare":
            operands = tree[2]
            for left, right in pairwise(operands):
                for a, b in ((left, right), (right, left)):
                    if a[0] == "name" and b[0] == "const":
                        found.setdefault(a[1], []).append(b[1])
                    if a[0] == "name" and b[0] == "list":
                        found.setdefault(a[1], []).extend(x[1] for x in b[1] if x[0] == "const")
        for child in tree[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                walk(child)
            elif isinstance(child, tuple):
                for item in child:
                    if isinstance(item, tuple) and item and isinstance(item[0], str):
                        walk(item)

    for constraint in constraints:
        walk(constraint.expression.tree)
    return found


def find_conflict(names: Sequence[str], domains: Sequence[Sequence[Any]],
                  constraints: Sequence[Constraint]) -> list[Constraint]:
    """A minimal subset of ``constraints`` that nothing satisfies (deletion filtering):
    dropping any one of the returned constraints makes the rest satisfiable."""
    needed = list(constraints)
    i = 0
    while i < len(needed):
        trial = needed[:i] + needed[i + 1:]
        if not Solver(names, domains, trial).satisfiable():
            needed = trial
        else:
            i += 1
    return needed
