"""Strategies that turn a space into valid points, deterministic for a seed.

- ``random``: uniform over valid points by rejection: draw a batch of columns (one numpy call
  per dimension), evaluate every constraint over the batch at once, keep the points that pass.
  When fewer than one point in 10,000 passes, points come from the constraint search with random
  value orders instead (valid, but no longer uniform; ``Points.uniform`` says so).
- ``edge``: each dimension's boundary values, one at a time, the other parameters at baseline;
  a boundary that breaks a constraint is kept by changing as few other parameters as the search
  needs, or dropped and listed in ``Points.impossible``.
- ``t-way``: a covering array over the levels (``covering.py``), every row a valid point.
- ``mixed``: edges first, then the pairwise rows the given points don't cover, then random.

Every strategy can *extend* an existing set of points: what those points already cover is not
generated again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from testfleet.errors import SpaceError
from testfleet.model import stable_id
from testfleet.space.covering import covering_array
from testfleet.space.space import Space

STRATEGIES = ("random", "edge", "t-way", "pairwise", "mixed")
_MIN_ACCEPTANCE = 1e-4


@dataclass
class Point:
    params: dict[str, Any]
    origin: str

    @property
    def key(self) -> str:
        return stable_id(_id_params(self.params))


@dataclass
class Points(Sequence[dict[str, Any]]):
    """Generated points: a sequence of parameter dicts (``for params in generate(...)``,
    ``points[0]``); ``.points`` holds each with its origin (``edge``, ``pairwise``...)."""

    points: list[Point]
    uniform: bool = True
    impossible: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (point.params for point in self.points)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [point.params for point in self.points[index]]
        return self.points[index].params


def _id_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params as :func:`stable_id` hashes them: MISSING spelled by its repr. Not
    :func:`testfleet.jsonable.jsonable`: that would merge NaN with None and change stored ids."""
    return {k: repr(v) if type(v).__name__ == "_Missing" else v for k, v in params.items()}


def random_points(space: Space, count: int, seed: int, *,
                  exclude: set[str] | None = None) -> Points:
    """``count`` distinct valid points drawn uniformly (fewer when the space has fewer).

    The same seed gives the same order whatever ``count``: ``random_points(s, 10, 7)`` is the
    first ten of ``random_points(s, 300, 7)``. Batch sizes therefore depend only on the round
    and the acceptance seen so far (they double each round), never on how many are wanted."""
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    found: list[Point] = []
    drawn = accepted = 0
    stale = 0
    rounds = 0
    while len(found) < count:
        rate = (accepted + 1) / (drawn + 1)
        batch = int(min(max(64 * 2 ** min(rounds, 12) / rate, 64), 200_000))
        rounds += 1
        columns = {name: dim.sample(rng, batch) for name, dim in space.dimensions.items()}
        ok = np.ones(batch, dtype=bool)
        for constraint in space.constraints:
            ok &= constraint.expression.evaluate_columns(columns, batch)
        drawn += batch
        accepted += int(ok.sum())
        before = len(found)
        if ok.any():
            lists = [columns[name][ok].tolist() for name in space.names]
            for values in zip(*lists, strict=True):
                point = Point(dict(zip(space.names, values, strict=True)), "random")
                key = point.key
                if key not in seen:
                    seen.add(key)
                    found.append(point)
                    if len(found) == count:
                        break
        stale = stale + 1 if len(found) == before else 0
        if stale >= 5 and accepted:
            break  # five batches with nothing new: the valid space is exhausted
        if (drawn >= 100_000 or stale >= 5) and accepted / drawn < _MIN_ACCEPTANCE:
            guided = _searched_points(space, count - len(found), rng, seen)
            return Points(found + guided, uniform=False)
    return Points(found)


def _searched_points(space: Space, count: int, rng: np.random.Generator,
                     seen: set[str]) -> list[Point]:
    """Valid points from the constraint search with shuffled value orders (not uniform)."""
    space.check_satisfiable()
    solver = space.solver()
    constrained = solver._component(list(solver.by_var))
    found: list[Point] = []
    for _ in range(count * 20):
        if len(found) == count:
            break
        free = {name: dim.sample(rng, 1).tolist()[0] for name, dim in space.dimensions.items()}
        prefer = {i: solver.domains[i][int(rng.integers(len(solver.domains[i])))]
                  for i in constrained}
        order = [constrained[i] for i in rng.permutation(len(constrained))]
        solved = solver.solve({}, prefer=prefer, only=order)
        if solved is None:
            break
        point = Point(free | {space.names[i]: v for i, v in solved.items()}, "random")
        if space.is_valid(point.params) and point.key not in seen:
            seen.add(point.key)
            found.append(point)
    return found


def edge_points(space: Space, *, exclude: set[str] | None = None) -> Points:
    """The baseline, then each dimension's boundary values paired with baseline values."""
    base = space.baseline()
    solver = space.solver()
    seen = set(exclude or ())
    out: list[Point] = []
    impossible: list[str] = []
    candidates = [Point(dict(base), "baseline")]
    for j, (name, dim) in enumerate(space.dimensions.items()):
        for label, value in dim.edges():
            params = dict(base) | {name: value}
            if space.violations(params):
                prefer = {i: base[n] for i, n in enumerate(space.names)}
                solved = solver.solve({j: value}, prefer=prefer)
                if solved is None or space.violations(
                        params | {space.names[i]: v for i, v in solved.items()}):
                    impossible.append(f"{name}={value!r} ({label})")
                    continue
                params |= {space.names[i]: v for i, v in solved.items()}
            candidates.append(Point(params, f"edge:{name}={label}"))
    for point in candidates:
        if point.key not in seen:
            seen.add(point.key)
            out.append(point)
    return Points(out, impossible=impossible)


def covering_points(space: Space, strength: int, seed: int, *,
                    existing: Sequence[Mapping[str, Any]] = (), effort: int = 1) -> Points:
    """Rows of a t-way covering array over the levels, as points; rows that only repeat
    ``existing`` are not returned."""
    if not 1 <= strength <= 6:
        raise SpaceError(f"strength {strength} is out of range", expected="t from 1 to 6")
    space.check_satisfiable()
    known = _known_rows(space, existing)
    rows = covering_array(space.level_counts(), min(strength, len(space)), seed=seed,
                          oracle=space.oracle(), existing=known, effort=effort)
    new_rows = rows[len(known):] if known is not None else rows
    origin = "pairwise" if strength == 2 else f"{strength}-way"
    return Points([Point(space.point_of_levels(row), origin) for row in new_rows])


def _known_rows(space: Space, existing: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    if not existing:
        return None
    rows = space.levels_of(list(existing))
    rows = rows[(rows >= 0).all(axis=1)]  # points outside the space cover nothing of it
    return rows if len(rows) else None


def mixed_points(space: Space, count: int, seed: int, *,
                 existing: Sequence[Mapping[str, Any]] = ()) -> Points:
    """Priority order: boundary values, then uncovered pairs, then random points."""
    taken = {Point(dict(p), "").key for p in existing}
    edges = edge_points(space, exclude=taken)
    chosen = edges.points[:count]
    taken |= {p.key for p in chosen}
    if len(chosen) < count and len(space) >= 2:
        pairs = covering_points(space, 2, seed,
                                existing=[*existing, *(p.params for p in chosen)])
        fresh = [p for p in pairs.points if p.key not in taken][: count - len(chosen)]
        chosen += fresh
        taken |= {p.key for p in fresh}
    uniform = True
    if len(chosen) < count:
        extra = random_points(space, count - len(chosen), seed, exclude=taken)
        chosen += extra.points
        uniform = extra.uniform
    return Points(chosen, uniform=uniform, impossible=edges.impossible)


def generate(space: Space, strategy: str, *, count: int | None = None, seed: int = 0,
             strength: int = 2, existing: Sequence[Mapping[str, Any]] = ()) -> Points:
    """One entry point for the CLI and the explore loop. ``count`` caps edge and t-way output
    and is required for random and mixed."""
    if strategy not in STRATEGIES:
        raise SpaceError(f"unknown strategy {strategy!r}", expected=" | ".join(STRATEGIES))
    taken = {Point(dict(p), "").key for p in existing}
    if strategy == "random":
        result = random_points(space, _need(count, strategy), seed, exclude=taken)
    elif strategy == "edge":
        result = edge_points(space, exclude=taken)
    elif strategy in ("t-way", "pairwise"):
        result = covering_points(space, 2 if strategy == "pairwise" else strength, seed,
                                 existing=existing)
    else:
        result = mixed_points(space, _need(count, strategy), seed, existing=existing)
    if count is not None:
        result.points = result.points[:count]
    return result


def _need(count: int | None, strategy: str) -> int:
    if count is None or count < 0:
        raise SpaceError(f"strategy {strategy!r} needs a count", expected="--count N with N >= 0")
    return count
