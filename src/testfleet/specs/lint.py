"""``testfleet spec lint``: specs that contradict each other, and specs nothing can match.

- *Contradiction*: two specs whose ``given`` can hold at the same point, whose ``when`` can
  select the same case, and whose ``then`` cannot both hold (different outcomes, or duration
  bounds that do not meet). Whether the givens overlap is a constraint search: over the space's
  levels (and its constraints) when a space is given, else over the constants the expressions
  name and their neighbours.
- *Never matches*: a ``given`` that no valid point of the space satisfies, or that names a
  parameter the space does not have.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testfleet.errors import UnsatisfiableError
from testfleet.space.constraints import Constraint, Solver, constants_by_name
from testfleet.space.space import Space
from testfleet.specs.language import Spec, Then, When

_WILDCARDS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Finding:
    kind: str           # "contradiction" | "never-matches" | "unknown-parameter"
    specs: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "specs": list(self.specs), "message": self.message}


def _satisfiable(givens: Sequence[Spec], space: Space | None) -> bool:
    constraints = [Constraint(s.given.text, s.given) for s in givens if s.given is not None]
    if not constraints:
        return True
    if space is not None:
        combined = Space(space.dimensions, [c.text for c in space.constraints] +
                         [c.text for c in constraints])
        try:
            combined.check_satisfiable()
        except UnsatisfiableError:
            return False
        return True
    names = sorted(set().union(*(c.names for c in constraints)))
    constants = constants_by_name(constraints)
    domains = []
    for name in names:
        values: list[Any] = [None, "\x00other"]
        for c in constants.get(name, []):
            values.append(c)
            if isinstance(c, (int, float)) and not isinstance(c, bool):
                values += [c - 1, c + 1, c - 0.5, c + 0.5]
            if isinstance(c, bool):
                values.append(not c)
        domains.append(values)
    return Solver(names, domains, constraints).satisfiable()


def _patterns_overlap(a: str, b: str) -> bool:
    """Can one nodeid match both glob patterns? Exact when either is literal; otherwise the
    literal prefixes must agree (conservative: may say yes for disjoint suffixes)."""
    if not _WILDCARDS.search(a) or not _WILDCARDS.search(b):
        import fnmatch
        literal, pattern = (a, b) if not _WILDCARDS.search(a) else (b, a)
        return fnmatch.fnmatchcase(literal, pattern)
    pa, pb = _WILDCARDS.split(a, 1)[0], _WILDCARDS.split(b, 1)[0]
    return pa.startswith(pb) or pb.startswith(pa)


def _when_overlap(a: When, b: When) -> bool:
    if not a.nodeids or not b.nodeids:
        return True  # markers never exclude each other: a case can carry both
    return any(_patterns_overlap(x, y) for x, y in itertools.product(a.nodeids, b.nodeids))


def _then_conflict(a: Then, b: Then) -> str | None:
    if a.outcomes is not None and b.outcomes is not None and not a.outcomes & b.outcomes:
        return f"one expects {a.outcome}, the other {b.outcome}"
    if a.duration and b.duration:
        lo = max(x for x in (a.duration.min, b.duration.min, float("-inf")) if x is not None)
        hi = min(x for x in (a.duration.max, b.duration.max, float("inf")) if x is not None)
        if lo > hi:
            return f"duration bounds {a.duration.describe()} and {b.duration.describe()} never meet"
    for (name_a, bound_a), (name_b, bound_b) in itertools.product(a.metrics, b.metrics):
        if name_a == name_b:
            lo = max(x for x in (bound_a.min, bound_b.min, float("-inf")) if x is not None)
            hi = min(x for x in (bound_a.max, bound_b.max, float("inf")) if x is not None)
            if lo > hi:
                return f"{name_a} bounds never meet"
    return None


def lint(specs: Sequence[Spec], space: Space | None = None) -> list[Finding]:
    findings: list[Finding] = []
    usable = []
    for spec in specs:
        if space is not None and spec.given is not None:
            unknown = sorted(spec.given.names - set(space.names))
            if unknown:
                findings.append(Finding("unknown-parameter", (spec.ref,),
                                        f"{spec.ref} reads {', '.join(unknown)}, which the "
                                        "space does not have"))
                continue
        if space is not None and not _satisfiable([spec], space):
            findings.append(Finding("never-matches", (spec.ref,),
                                    f"{spec.ref}: no valid point of the space satisfies "
                                    f"given {spec.given.text if spec.given else ''!r}"))
            continue
        usable.append(spec)
    for a, b in itertools.combinations(usable, 2):
        conflict = _then_conflict(a.then, b.then)
        if conflict and _when_overlap(a.when, b.when) and _satisfiable([a, b], space):
            findings.append(Finding("contradiction", (a.ref, b.ref),
                                    f"{a.ref} and {b.ref} can apply to the same execution but "
                                    f"{conflict}"))
    return findings
