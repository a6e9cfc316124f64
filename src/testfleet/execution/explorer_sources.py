"""The coverage sources of one explorable case, generated in rounds as the explorer needs them:
edges (sweeps that set every dimension to a boundary or special value at once, equal values of
two integer parameters, then each dimension's values alone, all on random points of the space
rather than on the baseline: :mod:`testfleet.execution.explorer_edges`), orders (every three
items of a permutation in every relative order, and every item right after every other; every
run of three operations in a row, for a list of choices), a
pairwise covering array that extends what already ran, then random points in chunks until the
space is used up.

While a rule's trigger reads telemetry, random points come in blocks that share their SUT
configuration (the ``sut.*`` parameters): the instance restarts only when the configuration
changes, so its telemetry (CPU load, memory) is that of a warm instance serving several
executions, which is what a trigger such as ``CPU_load > 80%`` reads. Each block's
configuration is itself drawn uniformly, and so are the other parameters of every point, so
random sampling stays uniform per point; but a block tries fewer configurations, so without
such a trigger every point draws its own (configuration interactions are found sooner).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from testfleet.execution.explorer_edges import MAX_EQUAL_ROWS, equal_rows, round_robin, sweep_rows
from testfleet.execution.proposals import CaseState

if TYPE_CHECKING:
    from testfleet.space.sampling import Point

__all__ = ["CONFIG_BLOCK", "FIRST_SOURCE", "RANDOM_CHUNK", "config_key", "coverage_rounds", "grouped_by_config"]

RANDOM_CHUNK = 16
#: Random points in a row that share one SUT configuration.
CONFIG_BLOCK = 4
#: Random chunks in a row that bring no point drawn before: a small space is used up.
FRUITLESS_CHUNKS = 8
#: Coverage scores (within a source they order its proposals; the bandit picks the source).
EDGE_SCORE, PAIRWISE_SCORE, RANDOM_SCORE = 2.0, 1.5, 1.0
#: Within the edge source: sweeps first, then equal values, then single edges.
SWEEP_SCORE, EQUAL_SCORE = 3.0, 2.5
#: The source whose proposals run before the bandit chooses: the sweeps (as many rows as the
#: richest dimension has edges; one miss must not starve them, each row tries every dimension).
FIRST_SOURCE = "edge:sweep"
#: Passes over the runs of a list of choices (each relabelled by another seed).
SEQUENCE_PASSES = 3

Push = Callable[..., None]


def config_key(params: dict[str, Any]) -> str:
    """The SUT configuration a point asks for (its ``sut.*`` values), as a comparable key."""
    return json.dumps({k: v for k, v in params.items() if k.startswith("sut.")}, sort_keys=True, default=repr)


def coverage_rounds(state: CaseState, push: Push, used_up: Callable[[], None],
                    block: Callable[[], int] = lambda: CONFIG_BLOCK) -> Iterator[None]:
    """Push the case's next round of coverage proposals at each step (``push(state, params,
    origin, parent, provenance, score=...)``); calls ``used_up`` once the space ran out.
    ``block()``: how many random points in a row share a configuration now."""
    from testfleet.space.composite import ListOf, Permutation
    from testfleet.space.dimensions import Choice
    from testfleet.space.orders import sequence_orders
    from testfleet.space.sampling import covering_points, edge_points

    # every edge of every dimension at once, equal values of two integer parameters, each edge
    # alone (see explorer_edges), all on uniform random points: three arms of the allocation
    # (origins edge:sweep, edge:equal, edge; one family, the edge's prior), so that the few
    # sweeps finding the space's exact-value defects at once do not lend their yield to the
    # many single edges that follow
    edges = [p for p in edge_points(state.space).points if p.origin.startswith("edge:")]
    edges = round_robin(edges, _edge_name, lambda p: p.origin.split("=", 1)[-1])
    backgrounds = _backgrounds(state, len(edges) + MAX_EQUAL_ROWS)
    sweeps = sweep_rows(state.space, backgrounds[len(edges):])
    for i, (params, label) in enumerate(sweeps):
        push(state, params, "edge:sweep", None, {"edge": label}, score=SWEEP_SCORE - 0.001 * i)
    for i, (params, label) in enumerate(equal_rows(state.space, backgrounds[::-1], state.seed)):
        push(state, params, "edge:equal", None, {"edge": label}, score=EQUAL_SCORE - 0.001 * i)
    for i, (point, background) in enumerate(zip(edges, backgrounds, strict=False)):
        push(state, _on_background(state, point, background), "edge", None, {"edge": point.origin},
             score=EDGE_SCORE - 0.001 * i)
    for name, dim in state.space.dimensions.items():
        if isinstance(dim, Permutation):
            for i, order in enumerate(sequence_orders(dim.items, state.seed)):
                push(state, {**state.baseline, name: order}, "order", None,
                     {"covers": "orders of three and neighbours of " + name}, score=PAIRWISE_SCORE - 0.001 * i)
        elif isinstance(dim, ListOf) and isinstance(dim.item, Choice):
            _runs_in_a_row(state, push, name, dim)
    yield
    if len(state.space) >= 2:
        rows = covering_points(state.space, 2, state.seed, existing=state.ran).points
        for i, point in enumerate(sorted(rows, key=lambda p: config_key(p.params))):
            push(state, point.params, "pairwise", None, {}, score=PAIRWISE_SCORE - 0.001 * i)
        yield
    chunk = fruitless = 0
    seen: set[str] = set()
    while fruitless < FRUITLESS_CHUNKS:  # a small space runs out: every point drawn again
        chunk += 1
        points = _config_blocks(state, chunk, block())
        if not points:
            break
        fresh = 0
        for params in points:
            key = json.dumps(params, sort_keys=True, default=repr)
            if key in seen:
                continue
            seen.add(key)
            fresh += 1
            push(state, params, "random", None, {}, score=RANDOM_SCORE)
        fruitless = 0 if fresh else fruitless + 1
        yield
    used_up()


def _runs_in_a_row(state: CaseState, push: Push, name: str, dim: Any) -> None:
    """Lists of operations (a list of choices) in which every run of three operations comes in
    a row (:func:`~testfleet.space.orders.contiguous_sequences`), in :data:`SEQUENCE_PASSES`
    passes relabelled by the seed, each list on a uniform random point (the policy, the
    capacity... vary around it)."""
    from testfleet.space.orders import contiguous_sequences
    from testfleet.space.sampling import random_points

    lists = [seq for k in range(SEQUENCE_PASSES)
             for seq in contiguous_sequences(dim.item.values, dim.max_items, state.seed + k,
                                             min_len=dim.min_items)]
    drawn = [dict(p.params) for p in random_points(state.space, len(lists), state.seed + 104729).points]
    drawn += [dict(state.baseline)] * (len(lists) - len(drawn))
    for i, (seq, background) in enumerate(zip(lists, drawn, strict=True)):
        params = {**background, name: seq}
        if state.space.violations(params):
            params = {**state.baseline, name: seq}
        push(state, params, "order", None, {"covers": "runs of three in a row of " + name},
             score=PAIRWISE_SCORE - 0.001 * i)


def _edge_name(point: Point) -> str:
    return point.origin.split(":", 1)[1].split("=", 1)[0]


def _backgrounds(state: CaseState, count: int) -> list[dict[str, Any]]:
    """Random points to set the edges on (the baseline where the space has too few)."""
    from testfleet.space.sampling import random_points

    drawn = [dict(p.params) for p in random_points(state.space, count, state.seed + 7919).points]
    return drawn + [dict(state.baseline)] * (count - len(drawn))


def _on_background(state: CaseState, point: Point, background: dict[str, Any]) -> dict[str, Any]:
    """An edge value on a random point rather than on the baseline: the boundary is tried all
    the same, and so is a uniform draw of everything else (a baseline of empty inputs or
    default settings often hides what a boundary would break). Where the constraints refuse
    the mix, the edge keeps the baseline's values."""
    name = point.origin.split(":", 1)[1].split("=", 1)[0] if point.origin.startswith("edge:") else None
    if name is None or name not in point.params:
        return point.params
    mixed = {**background, name: point.params[name]}
    return point.params if state.space.violations(mixed) else mixed


def _config_blocks(state: CaseState, chunk: int, size: int) -> list[dict[str, Any]]:
    """A chunk of uniform random points; with a SUT config space, every ``size`` points in a
    row take the configuration of the first (when the constraints allow it)."""
    from testfleet.space.sampling import random_points

    points = [dict(p.params) for p in random_points(state.space, RANDOM_CHUNK, state.seed + chunk).points]
    if size <= 1 or not any(name.startswith("sut.") for name in state.space.dimensions):
        return points
    out = []
    for start in range(0, len(points), size):
        block = points[start:start + size]
        config = {k: v for k, v in block[0].items() if k.startswith("sut.")}
        for params in block:
            joined = {**params, **config}
            out.append(params if state.space.violations(joined) else joined)
    return out


def grouped_by_config(out: list[tuple[Any, Any]], cases: Mapping[int, CaseState]) -> list[tuple[Any, Any]]:
    """A batch of ``(proposal, variant)`` in dispatch order, grouped by SUT configuration, the
    one each case's instance runs now first: the instance restarts once per configuration, not
    once per variant."""
    first: dict[tuple[int, str], int] = {}
    for i, (proposal, _variant) in enumerate(out):
        state = cases[proposal.base]
        current = config_key({**state.baseline, **proposal.params}) == state.last_config
        first.setdefault((proposal.base, config_key(proposal.params)), -1 if current else i)
    return sorted(out, key=lambda pv: first[(pv[0].base, config_key(pv[0].params))])
