"""A parameter space: named dimensions (nested objects flattened to dotted names) and constraints.

The space is the one object every strategy, coverage measure and config writer works from:

- *points* are flat dicts ``{"db.pool": 8, "cache": "off"}``; :meth:`Space.nest` gives the
  nested form a configuration file or a test wants (absent optional keys dropped);
- *levels* are each dimension's classes plus the constants the constraints name, so a covering
  array can reach ``port == 8443`` and coverage bins executed values the same way;
- size is computed, never enumerated: ``log10_size`` of a 300-dimension space is a sum of logs.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from testfleet.errors import SpaceError, UnsatisfiableError
from testfleet.space.composite import Object
from testfleet.space.constraints import (
    Constraint,
    Solver,
    constants_by_name,
    find_conflict,
)
from testfleet.space.dimensions import Choice, Dimension, Float, Int, Level
from testfleet.space.expressions import MISSING, parse


def unknown_names_message(text: str, unknown: list[str], names: list[str]) -> str:
    """Why a constraint's names are not parameters, with the fix: a parameter whose name holds
    ``-`` (``io-threads``) reads as a subtraction unless written in backticks."""
    dashed = [n for n in names if "-" in n and n in text and f"`{n}`" not in text]
    if dashed:
        quoted = ", ".join(f"`{n}`" for n in dashed)
        what = "a name" if len(unknown) == 1 else "names"
        return (f"constraint {text!r} reads {', '.join(map(repr, unknown))} as {what}, because "
                f"'-' is subtraction: write parameters whose names hold '-' in backticks: "
                f"{quoted}")
    name = unknown[0]
    close = [c for c in difflib.get_close_matches(name, names, n=1) if c != name]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"constraint {text!r} names {name!r}, which is not a parameter{hint}"


def names_expected(names: list[str], shown: int = 20) -> str:
    """'one of a, b, c' listing every parameter, or the first ``shown`` and how many more."""
    more = f" (and {len(names) - shown} more)" if len(names) > shown else ""
    return "one of " + ", ".join(names[:shown]) + more


class Space:
    """Typed dimensions plus constraints. ``Space(threads=Int(1, 64), constraints=[...])``."""

    def __init__(self, dimensions: Mapping[str, Dimension] | None = None,
                 constraints: Iterable[str] = (), *, source: str | None = None,
                 **named: Dimension) -> None:
        self.source = source
        self.dimensions: dict[str, Dimension] = {}
        for name, dim in {**(dimensions or {}), **named}.items():
            self._add(str(name), dim)
        if not self.dimensions:
            raise SpaceError("a space needs at least one dimension", source=source,
                             expected="for example threads=Int(1, 64)")
        self.names = list(self.dimensions)
        self.constraints = [self._constraint(text, i) for i, text in enumerate(constraints)]
        self._levels = self._build_levels()
        self._solver: Solver | None = None

    def _add(self, name: str, dim: Dimension) -> None:
        if isinstance(dim, Object):
            for field, inner in dim.fields.items():
                self._add(f"{name}.{field}", inner)
            return
        if not isinstance(dim, Dimension):
            raise SpaceError(f"parameter {name!r} is {dim!r}", source=self.source, place=name,
                             expected="a dimension such as Int(1, 10) or Choice([...])")
        self.dimensions[name] = dim

    def _constraint(self, text: str, index: int) -> Constraint:
        place = f"constraints[{index}]"
        try:
            expression = parse(text)
        except SpaceError as exc:
            raise SpaceError(exc.message, source=self.source,
                             place=f"{place}{', ' + exc.place if exc.place else ''}",
                             expected=exc.expected) from None
        unknown = expression.names - set(self.dimensions)
        if unknown:
            raise SpaceError(unknown_names_message(text, sorted(unknown), self.names),
                             source=self.source, place=place,
                             expected=names_expected(self.names))
        return Constraint(text, expression)

    def _build_levels(self) -> dict[str, list[Level]]:
        constants = constants_by_name(self.constraints)
        levels: dict[str, list[Level]] = {}
        for name, dim in self.dimensions.items():
            own = dim.levels()
            if isinstance(dim, Choice):
                self._check_choice_constants(name, dim, constants.get(name, ()))
            for value in constants.get(name, ()):
                if dim.contains(value) and not any(
                        type(level.value) is type(value) and level.value == value
                        for level in own):
                    own.append(Level(f"={value!r}", value))
            levels[name] = own
        return levels

    def _check_choice_constants(self, name: str, dim: Choice, constants: Iterable[Any]) -> None:
        """A constraint comparing a choice with a value it never takes is a typo (or YAML
        reading ``off`` as false): say so instead of silently never matching."""
        for value in constants:
            if isinstance(value, str) and not dim.contains(value):
                hint = " (YAML reads unquoted off/on/yes/no as booleans: quote them)" \
                    if any(isinstance(v, bool) for v in dim.values) else ""
                raise SpaceError(f"a constraint compares {name} with {value!r}, which is not one "
                                 f"of its values {dim.values!r}{hint}", source=self.source,
                                 place="constraints", expected=f"one of {dim.values!r}")

    # -- shape ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Space({len(self)} dimensions, {len(self.constraints)} constraints)"

    def levels(self, name: str) -> list[Level]:
        return self._levels[name]

    def level_counts(self) -> list[int]:
        return [len(self._levels[name]) for name in self.names]

    def size(self) -> int | None:
        """Number of points before constraints, or None when a dimension is uncountable."""
        total = 1
        for dim in self.dimensions.values():
            count = dim.cardinality()
            if count is None:
                return None
            total *= count
        return total

    def log10_size(self) -> float:
        """log10 of the number of points (infinite when a dimension is continuous)."""
        total = 0.0
        for dim in self.dimensions.values():
            count = dim.cardinality()
            if count is None:
                return math.inf
            total += math.log10(count) if count < 10**300 else len(str(count)) - 1
        return total

    # -- points --------------------------------------------------------------------------------
    def baseline(self) -> dict[str, Any]:
        """Each dimension's default; repaired (fewest changes searched first) when the defaults
        break a constraint; UnsatisfiableError when no point satisfies the constraints."""
        point = {name: dim.baseline() for name, dim in self.dimensions.items()}
        if not self.violations(point):
            return point
        solver = self.solver()
        prefer = {i: point[name] for i, name in enumerate(self.names)}
        found = solver.solve({}, prefer=prefer, only=solver._component(list(solver.by_var)))
        if found is None:
            self.check_satisfiable()
            raise UnsatisfiableError("the constraints leave no valid baseline point",
                                     source=self.source)
        return point | {self.names[i]: v for i, v in found.items()}

    def violations(self, point: Mapping[str, Any]) -> list[str]:
        """Texts of the constraints a point breaks (and of parameters outside their dimension)."""
        problems = [f"{name}={point.get(name, MISSING)!r} is outside {dim!r}"
                    for name, dim in self.dimensions.items()
                    if not dim.contains(point.get(name, MISSING))]
        return problems + [c.text for c in self.constraints if not c.holds(point)]

    def is_valid(self, point: Mapping[str, Any]) -> bool:
        return not self.violations(point)

    def nest(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Flat dotted names -> nested dicts; absent optional keys are left out."""
        nested: dict[str, Any] = {}
        for name, value in point.items():
            if value is MISSING:
                continue
            parts = name.split(".")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return nested

    def render(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Values as a config file writes them (``64MB`` for human sizes), names unchanged."""
        return {name: self.dimensions[name].render(value) if name in self.dimensions else value
                for name, value in point.items()}

    # -- levels <-> points -----------------------------------------------------------------------
    def point_of_levels(self, row: Sequence[int]) -> dict[str, Any]:
        return {name: self._levels[name][int(level)].value
                for name, level in zip(self.names, row, strict=True)}

    def levels_of(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, k) level index of each point's value; -1 where a value is outside its dimension
        or the point lacks the parameter. Constants named by constraints count as their level."""
        out = np.empty((len(points), len(self.names)), dtype=np.int64)
        table = self._value_table(points)
        for j, name in enumerate(self.names):
            dim, levels = self.dimensions[name], self._levels[name]
            column = table[:, j]
            typed: np.ndarray = column
            if isinstance(dim, (Int, Float)):  # numeric bins are vectorised over typed arrays
                try:
                    as_numbers = np.array(column.tolist())
                    if as_numbers.dtype.kind in "iuf" and as_numbers.ndim == 1:
                        typed = as_numbers
                except (ValueError, TypeError, OverflowError):
                    pass
            out[:, j] = dim.level_of_many(typed)
            for index in range(len(dim.levels()), len(levels)):
                constant = levels[index].value
                hits = [i for i, v in enumerate(column)
                        if type(v) is type(constant) and v == constant]
                out[hits, j] = index
        return out

    def _value_table(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, k) object array of the points' values, MISSING where a parameter is absent."""
        names, n = self.names, len(points)
        table = np.empty((n, len(names)), dtype=object)
        if not n:
            return table
        getter = operator.itemgetter(*names)
        try:  # one C-level call per point when every point has every parameter
            rows = list(map(getter, points)) if len(names) > 1 else [(getter(p),) for p in points]
        except KeyError:
            rows = [tuple(p.get(name, MISSING) for name in names) for p in points]
        scalar = all(type(v) in (int, float, str, bool) or v is None for v in rows[0])
        if scalar:  # lists as values would make numpy add a dimension: fill by column then
            try:
                filled = np.array(rows, dtype=object)
                if filled.shape == table.shape:
                    return filled
            except ValueError:
                pass
        for j in range(len(names)):
            table[:, j] = [row[j] for row in rows]
        return table

    # -- constraints -------------------------------------------------------------------------------
    def solver(self) -> Solver:
        """The constraint search over level values (shared, its answers cached)."""
        if self._solver is None:
            domains = [[level.value for level in self._levels[n]] for n in self.names]
            self._solver = Solver(self.names, domains, self.constraints)
        return self._solver

    def oracle(self) -> LevelOracle | None:
        """For covering arrays and coverage: which partial level assignments can be completed."""
        return LevelOracle(self) if self.constraints else None

    def check_satisfiable(self, samples: int = 2000, seed: int = 0) -> None:
        """Raise UnsatisfiableError naming a minimal set of conflicting constraints."""
        if not self.constraints or self.solver().satisfiable():
            return
        rng = np.random.default_rng(seed)
        columns = {n: d.sample(rng, samples) for n, d in self.dimensions.items()}
        ok = np.ones(samples, dtype=bool)
        for c in self.constraints:
            ok &= c.expression.evaluate_columns(columns, samples)
        if ok.any():
            return  # a sampled point satisfies them all: the level search was too coarse
        domains = [[level.value for level in self._levels[n]] for n in self.names]
        conflict = find_conflict(self.names, domains, self.constraints)
        listed = "; ".join(repr(c.text) for c in conflict)
        raise UnsatisfiableError(f"no point satisfies these constraints together: {listed}",
                                 conflict=[c.text for c in conflict], source=self.source,
                                 expected="constraints that some point can satisfy")


class LevelOracle:
    """``consistent({column: level})`` for covering arrays and coverage (answers cached)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.solver = space.solver()
        self.values = [[level.value for level in space.levels(n)] for n in space.names]
        self._cache: dict[tuple[tuple[int, int], ...], bool] = {}
        # only parameters that some constraint reads can make an assignment inconsistent
        self._constrained = frozenset(self.solver.by_var)
        self._satisfiable: bool | None = None

    def consistent(self, assignment: Mapping[int, int]) -> bool:
        key = tuple(sorted((int(c), int(v)) for c, v in assignment.items()
                           if c in self._constrained))
        if not key:
            if self._satisfiable is None:
                self._satisfiable = self.solver.satisfiable()
            return self._satisfiable
        answer = self._cache.get(key)
        if answer is None:
            fixed = {c: self.values[c][v] for c, v in key}
            answer = self.solver.solve(fixed) is not None
            self._cache[key] = answer
        return answer
