"""Conditions and rules: ``fails when cache=off and threads>8: 97% of 120 executions``.

Elevated single values and significant combinations become rules; neighbouring numeric bins
merge into one range whose bounds then move to where the failures start (``_refine``); a rule
implied by a stronger one is dropped. (Split from ``interactions.py``, which finds the
combinations.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from testfleet.analysis.display import abbreviate, number, percent, to_json
from testfleet.analysis.frame import CATEGORICAL, AnalysisFrame, Column
from testfleet.analysis.interactions import (
    LIFT,
    MAX_RULES,
    MIN_SUPPORT,
    p_greater,
    wilson_low,
)

# ------------------------------------------------------------------------ conditions and rules

@dataclass(frozen=True)
class Condition:
    """One parameter condition: ``column=value``, ``column unset`` or ``low<column<=high``."""

    column: str
    op: str                     # "=" | "unset" | "range"
    value: Any = None           # "=": the value
    code: int | None = None     # "=": its categorical code
    low: float | None = None    # "range": column > low (None: unbounded)
    high: float | None = None   # "range": column <= high (None: unbounded)
    source: str = "param"

    @property
    def text(self) -> str:
        if self.op == "=":
            return f"{self.column}={abbreviate(self.value)}"
        if self.op == "unset":
            return f"{self.column} unset"
        if self.low is not None and self.high is not None:
            return f"{number(self.low)}<{self.column}<={number(self.high)}"
        if self.low is not None:
            return f"{self.column}>{number(self.low)}"
        if self.high is not None:
            return f"{self.column}<={number(self.high)}"
        return f"{self.column} set"

    def mask(self, column: Column) -> np.ndarray:
        values = column.values
        matches: np.ndarray  # numpy's comparisons are typed Any
        if self.op == "=":
            matches = values == self.code
        elif self.op == "unset":
            matches = values == -1 if column.kind == CATEGORICAL else np.isnan(values)
        else:
            values = column.numbers()       # a range over a categorical column of numbers too
            if self.low is None and self.high is None:
                matches = ~np.isnan(values)
            else:
                matches = values > self.low if self.low is not None else values <= self.high
            if self.low is not None and self.high is not None:
                matches &= values <= self.high
        return matches

    def key(self) -> tuple[Any, ...]:
        return (self.column, self.op, self.code, self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "op": self.op, "text": self.text,
                               "source": self.source}
        if self.op == "=":
            out["value"] = to_json(self.value)
        if self.op == "range":
            out |= {"low": to_json(self.low), "high": to_json(self.high)}
        return out


@dataclass
class Rule:
    """``fails when <conditions>``: support = executions matching, confidence = their failure
    rate, lift = confidence over the failure rate of the executions not matching."""

    conditions: list[Condition]
    support: int
    failures: int
    confidence: float
    lift: float
    q_value: float | None
    source: str                # "value" | "interaction" | "threshold" (see _specialisations)

    @property
    def text(self) -> str:
        return (f"fails when {' and '.join(c.text for c in self.conditions)}: "
                f"{percent(self.confidence)} of {self.support:,} executions")

    def mask(self, frame: AnalysisFrame) -> np.ndarray:
        mask = np.ones(len(frame), dtype=bool)
        for c in self.conditions:
            mask &= c.mask(frame.column(c.column))
        return mask

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "conditions": [c.to_dict() for c in self.conditions],
                "support": self.support, "failures": self.failures,
                "confidence": self.confidence, "lift": to_json(self.lift),
                "q_value": self.q_value, "source": self.source}


#: a rule candidate: conditions, source ("value" | "interaction"), q-value, count, failures
Candidate = tuple[list[Condition], str, float, int, int]


CLOSE_P = 0.001   # an open end of a range closes only on this much evidence


def _refine(cond: Condition, x: np.ndarray, failed: np.ndarray, base: np.ndarray | None,
            edges: np.ndarray) -> Condition:
    """A numeric range's bounds moved to the observed values giving the largest 2 x 2
    chi-square (failures inside vs outside) among the executions in ``base``, each bound within
    the bins beside it (``edges``: the column's bin edges), by coordinate ascent. The bins
    found the column; this finds where in them the failures start. An open end may close inside
    its end bin (``x<=997`` -> ``184<x<=997``) when the executions it then leaves out fail
    significantly less (one-sided Fisher, ``CLOSE_P``)."""
    sel = ~np.isnan(x) if base is None else base & ~np.isnan(x)
    values, inverse = np.unique(x[sel], return_inverse=True)
    if values.size < 2:
        return cond
    cn = np.concatenate([[0], np.cumsum(np.bincount(inverse))]).astype(float)
    cf = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=failed[sel]))])
    total, fails = cn[-1], cf[-1]
    if fails in (0, total):
        return cond

    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        n_in, f_in = cn[b] - cn[a], cf[b] - cf[a]
        n_out, f_out = total - n_in, fails - f_in
        diff = f_in * n_out - f_out * n_in
        denominator = n_in * n_out * fails * (total - fails)
        with np.errstate(divide="ignore", invalid="ignore"):
            chi2 = np.where(denominator > 0, total * diff * diff / denominator, 0.0)
        return np.where((diff > 0) & (b > a), chi2, -1.0)

    def choices(bound: float | None, upper: bool) -> np.ndarray:
        """Positions a bound may move to (position p: the bound is ``values[p - 1]``; 0 for a
        lower and ``values.size`` for an upper bound: unbounded), within the bins beside it.
        An unbounded side may close inside its end bin: a failing band in the first bin."""
        if bound is None:
            inner = (edges[-1] if upper else edges[0]) if edges.size else (-np.inf if upper else np.inf)
            moves = values[values >= inner] if upper else values[values < inner]
            end = values.size if upper else 0
        else:
            below, above = edges[edges < bound], edges[edges > bound]
            lo = below[-1] if below.size else -np.inf
            hi = above[0] if above.size else np.inf
            moves = np.append(values[(values >= lo) & (values < hi)], bound)
            end = None
        at = np.searchsorted(values, moves, side="right")
        return np.unique(at if end is None else np.append(at, end))

    lows, highs = choices(cond.low, False), choices(cond.high, True)
    a = 0 if cond.low is None else int(np.searchsorted(values, cond.low, side="right"))
    b = values.size if cond.high is None else int(np.searchsorted(values, cond.high, side="right"))
    for _ in range(3):
        before = (a, b)
        a = int(lows[np.argmax(score(lows, np.full(lows.size, b)))])
        b = int(highs[np.argmax(score(np.full(highs.size, a), highs))])
        if (a, b) == before:
            break
    if b <= a or score(np.array([a]), np.array([b]))[0] < 0:
        return cond
    # an open side closes only when what it leaves out fails clearly less than what it keeps
    # (a noisy threshold rule stays a threshold)
    n_in, f_in = cn[b] - cn[a], cf[b] - cf[a]
    if cond.low is None and a > 0 and \
            float(p_greater(f_in, n_in, f_in + cf[a], n_in + cn[a])) > CLOSE_P:
        a = 0
    if cond.high is None and b < values.size and float(p_greater(
            f_in, n_in, f_in + cf[-1] - cf[b], n_in + cn[-1] - cn[b])) > CLOSE_P:
        b = values.size
    low = cond.low if a == 0 else float(values[a - 1])
    high = None if cond.high is None and b == values.size else float(values[b - 1])
    return Condition(cond.column, "range", low=low, high=high, source=cond.source)


def _as_ranges(frame: AnalysisFrame, cand: Candidate) -> Candidate:
    """``threads=12`` on a categorical column of numbers, as the range ``8<threads<=12``
    between its neighbouring values (open at either end), so that neighbouring values merge
    (``_merge_bins``) and the cut is refined like a numeric bin's: ``threads>8``, not one rule
    per value."""
    conds = []
    for c in cand[0]:
        column = frame.column(c.column)
        if c.op != "=" or column.kind != CATEGORICAL or not column.ordered or c.code is None:
            conds.append(c)
            continue
        labels = [float(v) for v in column.labels or []]
        low = labels[c.code - 1] if c.code > 0 else None
        high = labels[c.code] if c.code < len(labels) - 1 else None
        conds.append(Condition(c.column, "range", low=low, high=high, source=c.source))
    return (conds, *cand[1:])


def _open_ended(cond: Condition, column: Column) -> Condition:
    """A range reaching past the smallest or largest value seen is open on that side; a range
    of a categorical column holding one value is that value (``x=7``, not ``6<x<=7``)."""
    if cond.op != "range":
        return cond
    x = column.numbers()
    x = x[~np.isnan(x)]
    if not x.size:
        return cond
    low = None if cond.low is not None and cond.low < x.min() else cond.low
    high = None if cond.high is not None and cond.high >= x.max() else cond.high
    if column.kind == CATEGORICAL:
        labels = column.labels or []
        inside = [i for i, v in enumerate(labels)
                  if (low is None or v > low) and (high is None or v <= high)]
        if len(inside) == 1:
            return Condition(cond.column, "=", value=labels[inside[0]], code=inside[0],
                             source=cond.source)
    if (low, high) == (cond.low, cond.high):
        return cond
    return Condition(cond.column, "range", low=low, high=high, source=cond.source)


def _low(cond: Condition) -> float:
    return -np.inf if cond.low is None else cond.low


def _merge_bins(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates that differ only in neighbouring bins of one numeric condition, merged into
    one range (``threads>8`` rather than three bins); counts add up, q is the smallest."""
    groups: dict[tuple[Any, ...], list[Candidate]] = {}
    out = []
    for cand in candidates:
        ranges = [c for c in cand[0] if c.op == "range"]
        if len(ranges) != 1:
            out.append(cand)
            continue
        others = tuple(sorted(c.key() for c in cand[0] if c.op != "range"))
        groups.setdefault((cand[1], others, ranges[0].column), []).append(cand)
    for group in groups.values():
        group.sort(key=lambda cand: _low(next(c for c in cand[0] if c.op == "range")))
        run = [group[0]]
        for following in [*group[1:], None]:
            last = next(c for c in run[-1][0] if c.op == "range")
            if following is not None and \
                    next(c for c in following[0] if c.op == "range").low == last.high:
                run.append(following)
                continue
            first = next(c for c in run[0][0] if c.op == "range")
            merged = Condition(first.column, "range", low=first.low, high=last.high,
                               source=first.source)
            out.append(([merged if c.op == "range" else c for c in run[0][0]], run[0][1],
                        min(r[2] for r in run), sum(r[3] for r in run), sum(r[4] for r in run)))
            if following is not None:
                run = [following]
    return out


MAX_SMALL = 5     # rules below the minimum support kept as notes
SPECIALISED = 5   # the strongest rules that may gain a threshold


def _specialisations(frame: AnalysisFrame, rules: list[tuple[list[Condition], np.ndarray]],
                     fdr: float, implicated: set[str] | None
                     ) -> list[tuple[list[Condition], np.ndarray]]:
    """Each rule with one threshold on another ordered parameter added (``cache=off`` ->
    ``cache=off and threads>8``), where the threshold significantly separates the rule's own
    failures: the best cut of each column, each direction (largest 2 x 2 chi-square), by a
    one-sided Fisher test among the executions the rule matches, Bonferroni over every cut. Why: with few executions the
    value combinations (bins x values) are too small to test (``MIN_SUPPORT``), though a
    threshold over all of them is not. Only columns significant on their own (``implicated``)
    are tried, as for 3-way combinations (the hierarchy principle): fewer cuts, more power, and
    the cost stays small on a million executions."""
    failed = np.asarray(frame.failed, dtype=bool)
    ordered = []
    for column in frame.columns:
        if not column.ordered or column.source != "param" or \
                (implicated is not None and column.name not in implicated):
            continue
        if column.kind == CATEGORICAL:      # codes already follow the values' order
            all_values = np.array([float(v) for v in column.labels or []])
            codes = column.values
        else:
            finite = ~np.isnan(column.values)
            all_values, inverse = np.unique(column.values[finite], return_inverse=True)
            codes = np.full(column.values.size, -1)
            codes[finite] = inverse.reshape(-1)
        ordered.append((column, all_values, codes))
    tried: list[tuple[list[Condition], np.ndarray, Column, float, bool, tuple[int, ...]]] = []
    cuts = 0
    for conds, mask in rules[:SPECIALISED]:
        rows = np.flatnonzero(mask)
        big_n, big_f = rows.size, int(failed[rows].sum())
        if big_f < 3 or big_f == big_n:
            continue
        used = {c.column for c in conds}
        rule_failed = failed[rows]
        for column, all_values, codes in ordered:
            if column.name in used:
                continue
            c = codes[rows]
            keep = c >= 0
            c, fc = c[keep], rule_failed[keep]
            counts = np.bincount(c, minlength=all_values.size)
            present = counts > 0
            values = all_values[present]
            if values.size < 2:
                continue
            fails = np.bincount(c, weights=fc, minlength=all_values.size)
            below_n = np.cumsum(counts[present])[:-1]                # x <= values[i]
            below_f = np.cumsum(fails[present])[:-1].astype(np.int64)
            set_n, set_f = int(c.size), int(fc.sum())
            cuts += 2 * (values.size - 1)
            for above in (True, False):
                n = set_n - below_n if above else below_n
                f = set_f - below_f if above else below_f
                # the cut with the largest excess of failures (2 x 2 chi-square), then its
                # exact p-value; the Bonferroni factor covers every cut, whichever is picked
                diff = f * (big_n - n) - (big_f - f) * n
                with np.errstate(divide="ignore", invalid="ignore"):
                    chi2 = np.where((diff > 0) & (n > 0) & (n < big_n),
                                    diff.astype(float) ** 2 / (n * (big_n - n)), -1.0)
                best = int(np.argmax(chi2))
                if chi2[best] >= 0 and f[best] >= 3 and \
                        f[best] / max(n[best], 1) >= LIFT * big_f / big_n:
                    tried.append((conds, mask, column, float(values[best]), above,
                                  (int(f[best]), int(n[best]), big_f, big_n)))
    if not tried:
        return []
    # one exact test per candidate, all at once; a tail past fdr / cuts is cut short
    counts = np.array([t[5] for t in tried])
    failures, count, fail_total, total = counts.T
    p_values = p_greater(failures, count, fail_total, total, stop=fdr / max(cuts, 1))
    out = []
    for (conds, mask, column, v, above, _), p in zip(tried, p_values):
        if p * max(cuts, 1) > fdr:
            continue
        cond = Condition(column.name, "range", low=v if above else None,
                         high=None if above else v, source=column.source)
        x = column.numbers()
        out.append(([*conds, _open_ended(cond, column)], mask & ((x > v) if above else (x <= v))))
    return out


def build_rules(frame: AnalysisFrame, candidates: list[Candidate], edges: dict[str, np.ndarray],
                fdr: float, implicated: set[str] | None = None,
                small: list[Rule] | None = None) -> list[Rule]:
    """Rules from elevated values and significant combinations, strongest first.

    Neighbouring numeric bins are merged, numeric bounds refined (``_refine``), and candidates
    ranked by the lower Wilson bound of their failure rate. A rule is kept when the executions
    it matches beyond the rules kept before it still fail ``LIFT`` times as often as those no
    kept rule matches, and that excess is significant (one-sided Fisher at ``fdr`` divided by
    the number of candidates) - a rule implied by a stronger one adds nothing and is dropped.

    A rule whose bounds, once refined, match fewer than ``MIN_SUPPORT`` executions is too small
    to test (``amount<=0``: 8 of 8 failed); when most of them failed, more than elsewhere, and
    its failures are not a kept rule's, it goes to ``small`` (at most ``MAX_SMALL``) rather than
    away: a note to read, a hypothesis where guided executions found it.
    """
    candidates = _merge_bins([_as_ranges(frame, c) for c in candidates])
    if not candidates:
        return []
    prelim = wilson_low([c[4] for c in candidates], [c[3] for c in candidates])
    chosen = [candidates[i] for i in np.argsort(-prelim, kind="stable")[:3 * MAX_RULES]]
    failed = np.asarray(frame.failed, dtype=bool)
    scored = []
    seen: set[tuple[Any, ...]] = set()
    for conds, source, q, _, _ in chosen:
        conds = list(conds)
        masks = [c.mask(frame.column(c.column)) for c in conds]
        for i, c in enumerate(conds):
            if c.op == "range":
                others = [m for j, m in enumerate(masks) if j != i]
                base = np.logical_and.reduce(others) if others else None
                column = frame.column(c.column)
                # a column of few numbers has no bins: its cut may go between any two values
                conds[i] = _open_ended(_refine(c, column.numbers(), failed, base,
                                               edges.get(c.column, np.empty(0))), column)
                masks[i] = conds[i].mask(column)
        key = tuple(sorted(c.key() for c in conds))
        if key in seen:
            continue
        seen.add(key)
        mask = np.logical_and.reduce(masks)
        support, fails = int(mask.sum()), int(failed[mask].sum())
        if support:
            scored.append((float(wilson_low(fails, support)), support, conds, source, q, mask, fails))
    strongest = sorted(scored, key=lambda s: (-s[0], -s[1]))
    for conds, mask in _specialisations(frame, [(s[2], s[5]) for s in strongest], fdr,
                                        implicated):
        fails = int(failed[mask].sum())
        scored.append((float(wilson_low(fails, int(mask.sum()))), int(mask.sum()), conds,
                       "threshold", None, mask, fails))
    scored.sort(key=lambda s: (-s[0], -s[1]))
    covered = np.zeros(len(frame), dtype=bool)
    noted = np.zeros(len(frame), dtype=bool)     # failures a small rule already notes
    total_fail = int(failed.sum())
    rules: list[Rule] = []
    for _, support, conds, source, q, mask, fails in scored:
        new = mask & ~covered
        n_new, f_new = int(new.sum()), int(failed[new].sum())
        rest = ~covered & ~mask
        n_rest = int(rest.sum())
        base_fails = int(failed[rest].sum())
        base_rate = base_fails / n_rest if n_rest else 0.0
        if small is not None and n_new < MIN_SUPPORT and f_new >= 3 and 2 * f_new >= n_new \
                and f_new / n_new >= LIFT * base_rate and len(small) < MAX_SMALL \
                and (new & failed & ~noted).any():
            noted |= mask
            small.append(Rule(conds, support, fails, fails / support, math.inf, None, "small"))
        if n_new < MIN_SUPPORT or f_new < 3 or f_new / n_new < LIFT * base_rate:
            continue
        if float(p_greater(f_new, n_new, f_new + base_fails, n_new + n_rest)) > fdr / len(scored):
            continue      # what it adds beyond the kept rules could be chance (Bonferroni)
        covered |= mask
        outside = (total_fail - fails) / max(len(frame) - support, 1)
        rules.append(Rule(conds, support, fails, fails / support,
                          fails / support / outside if outside > 0 else math.inf, q, source))
        if len(rules) == MAX_RULES:
            break
    return rules
