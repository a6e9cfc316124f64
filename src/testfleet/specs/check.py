"""Checking specs against executions, column-wise.

Results arrive as a :class:`ResultTable` (numpy columns, one row per execution, plus each
distinct variant's parameters once). For each spec:

1. ``given`` is evaluated once per *distinct variant* (vectorised over parameter columns) and
   spread to the executions through the variant index;
2. ``when`` is decided once per *distinct nodeid* (glob patterns, markers);
3. ``then`` is checked on the matching executions: outcome sets and duration bounds as array
   comparisons, the message regex only on the executions still in question.

Verdict: ``holds`` (matching executions, none violating), ``violated`` (at least one, with
examples), ``untested`` (nothing matched, or a metric the executions never recorded).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from testfleet.space.expressions import MISSING
from testfleet.specs.language import Spec
from testfleet.patterns import compile_pattern

HOLDS, VIOLATED, UNTESTED = "holds", "violated", "untested"


@dataclass
class ResultTable:
    """Executions as columns. ``variant`` indexes ``variant_ids``/``params``."""

    nodeid: np.ndarray
    variant: np.ndarray
    outcome: np.ndarray
    duration: np.ndarray
    message: np.ndarray
    variant_ids: list[str]
    params: list[Mapping[str, Any]]
    markers: Mapping[str, frozenset[str]] = field(default_factory=dict)
    metrics: list[Mapping[str, float]] | None = None   # per execution, when telemetry exists

    def __len__(self) -> int:
        return len(self.nodeid)

    @cached_property
    def nodeid_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct nodeids and each execution's index into them (computed once)."""
        names, inverse = np.unique(self.nodeid.astype(str), return_inverse=True)
        return names, inverse.reshape(-1)

    @cached_property
    def outcome_strings(self) -> np.ndarray:
        return self.outcome.astype(str)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> ResultTable:
        """A table from plain dicts (nodeid, params, outcome, duration, message, markers,
        variant_id): the Python API and the tests."""
        index: dict[str, int] = {}
        params: list[Mapping[str, Any]] = []
        variant_ids: list[str] = []
        positions = []
        markers: dict[str, frozenset[str]] = {}
        for i, row in enumerate(rows):
            vid = row.get("variant_id") or f"v{i}"
            if vid not in index:
                index[vid] = len(params)
                params.append(dict(row.get("params", {})))
                variant_ids.append(vid)
            positions.append(index[vid])
            markers.setdefault(row["nodeid"], frozenset(row.get("markers", ())))

        def column(key: str, default: Any) -> np.ndarray:
            return np.array([r.get(key, default) for r in rows], dtype=object)

        return cls(nodeid=column("nodeid", ""), variant=np.array(positions, dtype=np.int64),
                   outcome=column("outcome", ""),
                   duration=np.array([float(r.get("duration", 0.0)) for r in rows]),
                   message=column("message", ""), variant_ids=variant_ids, params=params,
                   markers=markers,
                   metrics=[dict(r.get("metrics", {})) for r in rows]
                   if any("metrics" in r for r in rows) else None)


@dataclass
class Example:
    variant_id: str
    nodeid: str
    params: dict[str, Any]
    outcome: str
    duration: float
    message: str
    why: str


@dataclass
class Verdict:
    spec: Spec
    status: str
    matching: int
    violations: int
    examples: list[Example]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.spec.id, "version": self.spec.version, "status": self.status,
                "description": self.spec.description,
                "given": self.spec.given.text if self.spec.given else None,
                "when": self.spec.when.describe(), "then": self.spec.then.describe(),
                "matching": self.matching, "violations": self.violations, "note": self.note,
                "examples": [e.__dict__ for e in self.examples]}


def _param_columns(table: ResultTable, names: frozenset[str]) -> dict[str, np.ndarray]:
    columns = {}
    for name in names:
        column = np.empty(len(table.params), dtype=object)
        column[:] = [p.get(name, MISSING) for p in table.params]
        if len(column) and all(type(v) in (int, float) for v in column):
            column = np.array(column.tolist())  # numeric: the fast vectorised path
        columns[name] = column
    return columns


def given_mask(spec: Spec, table: ResultTable) -> np.ndarray:
    """Which executions' variants satisfy ``given``."""
    if spec.given is None:
        return np.ones(len(table), dtype=bool)
    per_variant = spec.given.evaluate_columns(_param_columns(table, spec.given.names),
                                              len(table.params))
    return per_variant[table.variant] if len(table) else np.zeros(0, dtype=bool)


def when_mask(spec: Spec, table: ResultTable) -> np.ndarray:
    """Which executions are of cases ``when`` selects (decided once per distinct nodeid)."""
    when = spec.when
    if not when.nodeids and not when.markers:
        return np.ones(len(table), dtype=bool)
    names, inverse = table.nodeid_index
    patterns = [re.compile(fnmatch.translate(p)) for p in when.nodeids]
    chosen = np.array([
        (not patterns or any(p.match(name) for p in patterns))
        and set(when.markers) <= table.markers.get(name, frozenset())
        for name in names], dtype=bool)
    return chosen[inverse] if len(names) else np.zeros(len(table), dtype=bool)


def check(specs: Sequence[Spec], table: ResultTable, *, examples: int = 5) -> list[Verdict]:
    return [check_one(spec, table, examples=examples) for spec in specs]


def check_one(spec: Spec, table: ResultTable, *, examples: int = 5) -> Verdict:
    match = given_mask(spec, table) & when_mask(spec, table)
    rows = np.flatnonzero(match)
    if not len(rows):
        return Verdict(spec, UNTESTED, 0, 0, [], "no execution matched given and when")
    then = spec.then
    bad = np.zeros(len(rows), dtype=bool)
    why = np.empty(len(rows), dtype=object)
    why[:] = ""
    if then.outcomes is not None:
        wrong = ~np.isin(table.outcome_strings[rows], sorted(then.outcomes))
        why[wrong & ~bad] = f"outcome is not {then.outcome}"
        bad |= wrong
    if then.duration is not None:
        d = table.duration[rows]
        wrong = np.zeros(len(rows), dtype=bool)
        if then.duration.min is not None:
            wrong |= d < then.duration.min
        if then.duration.max is not None:
            wrong |= d > then.duration.max
        why[wrong & ~bad] = f"duration not {then.duration.describe()} s"
        bad |= wrong
    note = ""
    if then.metrics:
        missing = []
        for name, bound in then.metrics:
            values = [None if table.metrics is None else table.metrics[r].get(name) for r in rows]
            if all(v is None for v in values):
                missing.append(name)
                continue
            wrong = np.array([v is not None and not bound.holds(v) for v in values], dtype=bool)
            why[wrong & ~bad] = f"{name} not {bound.describe()}"
            bad |= wrong
        if missing:
            note = f"no execution recorded {', '.join(missing)}"
            if len(missing) == len(then.metrics) and then.outcome is None and \
                    then.message is None and then.duration is None:
                return Verdict(spec, UNTESTED, len(rows), 0, [], note)
    if then.message is not None:
        pattern = compile_pattern(then.message)  # RE2: linear time whatever the pattern
        for i in np.flatnonzero(~bad):
            if not pattern.search(str(table.message[rows[i]])):
                bad[i] = True
                why[i] = f"message does not match /{then.message}/"
    violating = rows[bad]
    shown = [Example(variant_id=table.variant_ids[table.variant[r]], nodeid=str(table.nodeid[r]),
                     params=dict(table.params[table.variant[r]]), outcome=str(table.outcome[r]),
                     duration=float(table.duration[r]),
                     message=str(table.message[r]).splitlines()[0][:200]
                     if table.message[r] else "", why=str(why[np.flatnonzero(bad)[k]]))
             for k, r in enumerate(violating[:examples])]
    status = VIOLATED if len(violating) else HOLDS
    return Verdict(spec, status, len(rows), len(violating), shown, note)
