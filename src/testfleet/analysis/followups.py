"""Follow-up variants for ``testfleet analyze --next``: the few executions that would best
confirm or refute the top suspects.

For each rule, strongest first: take a failing execution the rule matches and undo ONE of its
conditions (a numeric value just past the boundary), which should pass if the rule is right;
take a passing execution and apply the ONE missing condition, which should fail; for a
combination, apply one of its values alone to a passing execution, which tests whether that value
alone is to blame. Seeded; never a parameter set already executed or already proposed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from testfleet.analysis.display import abbreviate, to_json
from testfleet.analysis.findings import Condition, Rule
from testfleet.analysis.frame import CATEGORICAL, AnalysisFrame, Column

if TYPE_CHECKING:
    from testfleet.analysis.correlation import Analysis


@dataclass
class FollowUp:
    """A variant to run next: one parameter changed from an executed variant."""

    params: dict[str, Any]
    reason: str
    based_on: str
    changed: str
    old: Any
    new: Any
    expect: str                # what the suspect rule predicts: "pass" | "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"params": to_json(self.params), "reason": self.reason, "based_on": self.based_on,
                "changed": self.changed, "old": to_json(self.old), "new": to_json(self.new),
                "expect": self.expect}


# ------------------------------------------------------------------------------ next variants

_UNSET = object()


def _params(frame: AnalysisFrame) -> list[Mapping[str, Any]]:
    """The parameters of each execution, which every proposal starts from."""
    if frame.params is None:
        raise ValueError("next_variants needs the frame's per-execution params")
    return frame.params


def _typed(frame: AnalysisFrame, column: str, row: int) -> Any:
    return _params(frame)[row].get(column, _UNSET)


def _donor(frame: AnalysisFrame, cond: Condition, col: Column, toward: str
           ) -> tuple[Any, int] | None:
    """A value for ``cond.column`` as some execution had it, and that execution's row: toward
    "pass" one outside ``cond`` (categorical: the value failing least; numeric: the passing value
    nearest the boundary), toward "fail" one inside it (numeric: nearest the boundary)."""
    if cond.op == "unset" and toward == "fail":
        return _UNSET, -1
    values = col.values
    inside = cond.mask(col)
    if toward == "pass":
        if col.kind == CATEGORICAL:
            pool = ~inside & (values >= 0)
            if not pool.any():
                return None
            shifted = values + 1
            n = np.bincount(shifted, minlength=len(col.labels or []) + 1).astype(float)
            f = np.bincount(shifted[frame.failed], minlength=n.size)
            seen = np.bincount(shifted[pool], minlength=n.size) > 0
            rate = np.where(seen, f / np.maximum(n, 1), np.inf)
            best = np.flatnonzero(rate == rate.min())
            code = int(best[np.argmax(n[best])]) - 1
            return _typed_value(frame, col, values == code)
        pool = ~inside & ~frame.failed & ~np.isnan(values)
        if not pool.any():
            return None
        cand = values[pool]
        if cond.op == "range" and cond.low is not None and (cand <= cond.low).any():
            target = cand[cand <= cond.low].max()
        elif cond.op == "range" and cond.high is not None and (cand > cond.high).any():
            target = cand[cand > cond.high].min()
        else:
            uniq, counts = np.unique(cand, return_counts=True)
            target = uniq[np.argmax(counts)]
        return _typed_value(frame, col, values == target)
    if cond.op == "=":
        return _typed_value(frame, col, inside)
    cand = values[inside]
    if not cand.size:
        return None
    target = cand.min() if cond.low is not None else cand.max()
    return _typed_value(frame, col, values == target)


def _typed_value(frame: AnalysisFrame, col: Column, where: np.ndarray) -> tuple[Any, int] | None:
    rows = np.flatnonzero(where)
    for row in rows[:50]:
        value = _typed(frame, col.name, int(row))
        if value is not _UNSET:
            return value, int(row)
    return None


def _executed(frame: AnalysisFrame, params: dict[str, Any], base: int, changed: str,
              donor: int) -> bool:
    """Whether ``params`` (``base``'s with ``changed`` taken from row ``donor``) ran already."""
    mask = np.ones(len(frame), dtype=bool)
    for col in frame.columns:
        if col.source != "param":
            continue
        row = donor if col.name == changed else base
        if row < 0:
            value = -1 if col.kind == CATEGORICAL else np.nan
        else:
            value = col.values[row]
        if col.kind != CATEGORICAL and np.isnan(value):
            mask &= np.isnan(col.values)
        else:
            mask &= col.values == value
        if not mask.any():
            return False
    executed = _params(frame)
    return any(executed[int(r)] == params for r in np.flatnonzero(mask))


def next_variants(frame: AnalysisFrame, analysis: Analysis, count: int = 5, seed: int = 0
                  ) -> list[FollowUp]:
    """Variants that best confirm or refute the top rules, one parameter changed each.

    For each rule, strongest first: a failing execution matching it with one condition undone
    (expect a pass if the condition matters); a passing execution missing exactly one condition
    with it applied (expect a failure); for a combination, a passing execution matching none of
    it with one condition alone (expect a pass: the combination, not the value, is the cause).
    When every such test has one proposal, they repeat on other executions (replications).
    Values come from executed variants; nothing already executed or proposed is proposed.
    """
    _params(frame)  # fails early, before any work, on a frame without them
    rng = np.random.default_rng(seed)
    failed = np.asarray(frame.failed, dtype=bool)
    everything = np.ones(len(frame), dtype=bool)
    plans = []
    # the design's rules first; then what guided executions suggest (the hypotheses need it most)
    for rule in [*analysis.rules, *(h.rule for h in analysis.hypotheses)]:
        conds = rule.conditions
        masks = [c.mask(frame.column(c.column)) for c in conds]
        settable = [i for i, c in enumerate(conds) if c.source == "param"]
        for i in settable:
            plans.append(("revert", rule, conds[i], failed & np.logical_and.reduce(masks)))
        for i in settable:
            near = np.logical_and.reduce([m for j, m in enumerate(masks) if j != i] or [everything])
            plans.append(("complete", rule, conds[i], ~failed & near & ~masks[i]))
        if len(conds) > 1:
            none = ~np.logical_or.reduce(masks)
            plans += [("alone", rule, conds[i], ~failed & none) for i in settable]
    queues = []
    for kind, rule, cond, rows in plans:
        donor = _donor(frame, cond, frame.column(cond.column), "pass" if kind == "revert" else "fail")
        if donor is not None:
            queues.append((kind, rule, cond, donor, iter(rng.permutation(np.flatnonzero(rows)))))
    proposals: list[FollowUp] = []
    proposed: set[str] = set()
    while queues and len(proposals) < count:
        for queue in list(queues):
            proposal = _propose(frame, *queue, proposed)
            if proposal is None:
                queues.remove(queue)
                continue
            proposals.append(proposal)
            if len(proposals) == count:
                break
    return proposals


def _propose(frame: AnalysisFrame, kind: str, rule: Rule, cond: Condition,
             donor: tuple[Any, int], rows: Iterator[np.integer[Any]], proposed: set[str],
             tries: int = 200
             ) -> FollowUp | None:
    """The next new proposal from ``rows`` (an iterator of execution rows), or None."""
    new, donor_row = donor
    ids = frame.variant_ids
    for drawn in itertools.islice(rows, tries):
        row = int(drawn)
        params = dict(_params(frame)[row])
        old = params.get(cond.column, _UNSET)
        if new is _UNSET:
            params.pop(cond.column, None)
        else:
            params[cond.column] = new
        key = repr(sorted(params.items(), key=lambda kv: kv[0]))
        if old == new or key in proposed or _executed(frame, params, row, cond.column, donor_row):
            continue
        proposed.add(key)
        based = str(ids[row]) if ids is not None and ids[row] else f"execution {row}"
        return FollowUp(params, _reason(kind, rule, cond, based, old, new), based, cond.column,
                        None if old is _UNSET else old, None if new is _UNSET else new,
                        "pass" if kind in ("revert", "alone") else "fail")
    return None


def _reason(kind: str, rule: Rule, cond: Condition, based: str, old: Any, new: Any) -> str:
    shown = "unset" if new is _UNSET else f"{cond.column}={abbreviate(new)}"
    was = "unset" if old is _UNSET else f"{cond.column}={abbreviate(old)}"
    together = " and ".join(c.text for c in rule.conditions)
    if kind == "revert":
        return (f"tests whether {cond.text} is needed for the failure: {based} failed with "
                f"{was}; the same variant with {shown}")
    if kind == "alone":
        return (f"tests whether {cond.text} alone causes failure (the rule says it takes "
                f"{together}): {based} passed; the same variant with {shown}")
    if len(rule.conditions) == 1:
        return (f"tests whether {cond.text} alone causes failure: {based} passed with {was}; "
                f"the same variant with {shown}")
    return (f"tests whether {together} together cause failure: {based} passed without "
            f"{cond.text}; the same variant with {shown}")
