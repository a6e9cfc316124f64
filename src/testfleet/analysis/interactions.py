"""Value combinations for failure analysis: counting, testing, and the rules made from them
(used by :mod:`testfleet.analysis.correlation`).

Every parameter arrives here binned: one small level per execution (``uint8``), categorical
values as they are (a column's rarest values past ``MAX_LEVELS`` lumped into one untested
"other" level), numeric values in quantile bins, "unset" as a level of its own.

Counting. A *cell* is one value tuple of a column subset. Tuples are numbered by mixed-radix
encoding, so one ``np.bincount`` counts every tuple of a subset at once. Columns are first
*packed*: neighbouring columns share one ``uint16`` code while the product of their level
counts stays under a limit, and one bincount over a pair (or triple) of packs holds the joint
table of every column subset inside it; each subset's table is a sum over the other axes. With
six levels a column, 50 columns make 17 packs, so the 1,225 column pairs cost 136 passes over
the rows instead of 1,225. Failures are counted the same way over the failing rows only.

Testing a combination. A combination *explains failures better than its parts* when its
failure rate is above the rate of the executions outside it and above the rate of every
maximal proper sub-combination (both single values of a pair; the three pairs of a triple)
among that sub-combination's other executions. Each comparison is a one-sided Fisher exact test
(hypergeometric upper tail, margins fixed); the combination's p-value is the largest of them
(an intersection-union test: it is small only when every comparison is). Combinations are then
screened and corrected:

* support: fewer than ``MIN_SUPPORT`` executions -> not tested;
* Tarone's screen: a test whose smallest attainable p-value (all of the cell's executions
  failed) is above the FDR level can never be significant and leaves the family; the screen
  uses margins only, so the remaining tests keep their null distribution (Tarone 1990; with BH,
  Gilbert 2005);
* Benjamini-Hochberg over every tested pair and triple together;
* a practical lift over the best rate ``c`` among all proper sub-combinations: the rate is at
  least ``LIFT`` x ``c``, or its passing share at most ``(1 - c) / LIFT`` - raising 67 % to
  90 % removes two thirds of the passes and counts, 90 % to 92 % does not.

Only p-values at or below the FDR level are computed exactly: BH's decisions, and every q-value
at or below the level, depend on no others. A cell whose failures do not exceed the floor of the
expected count of some comparison has p >= 1/2 (the hypergeometric median lies between the
floor and ceiling of the mean) and is left at 1; the comparisons run one after another, each on
the cells still below the level, and a tail sum stops once it passes the level (``p_greater``).

Rules (``build_rules``): elevated single values and significant combinations become
``fails when ...`` rules; neighbouring numeric bins merge into one range, whose bounds then move
to where the failures start (``_refine``); a rule implied by a stronger one is dropped.

Triples: only among columns already implicated (a significant single column or a column of a
significant pair), at most ``TRIPLE_COLUMNS`` of them, strongest first; with 10 columns that is
120 subsets. A triple whose columns show no marginal or pairwise signal at all is not searched
(the hierarchy principle).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

MIN_SUPPORT = 10        # executions a value or combination needs before it is tested
LIFT = 1.5              # a combination must fail this much more often than its best part
MAX_LEVELS = 32         # levels per column in combinations; rarer values become "other"
TRIPLE_COLUMNS = 10     # columns the 3-way search may use
MAX_INTERACTIONS = 100  # significant combinations kept, strongest first
MAX_RULES = 10
JOINT_BINS = 1 << 16    # cells of one joint bincount (a pack pair: 256 x 256)


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values)."""
    p = np.asarray(p, dtype=float)
    return stats.false_discovery_control(p, method="bh") if p.size else p.copy()


#: counts, as arrays or one number (a margin shared by every cell)
Counts = np.ndarray | float


def _log_choose(n: Counts, k: Counts) -> np.ndarray:
    out: np.ndarray = -np.log1p(n) - special.betaln(n - k + 1, k + 1)  # scipy is untyped
    return out


def _log_pmf(x: Counts, count: Counts, fail_total: Counts, total: Counts) -> np.ndarray:
    out: np.ndarray = (_log_choose(fail_total, x) + _log_choose(total - fail_total, count - x)
                       - _log_choose(total, count))
    return out


def _ratio(x: np.ndarray, n: np.ndarray, big_k: np.ndarray, m: np.ndarray, up: bool
           ) -> np.ndarray:
    """pmf(x+1)/pmf(x) (up) or pmf(x-1)/pmf(x) (down); 0 past the support."""
    if up:
        num, den = (big_k - x) * (n - x), (x + 1) * (m - big_k - n + x + 1)
    else:
        num, den = x * (m - big_k - n + x), (big_k - x + 1) * (n - x + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((num > 0) & (den > 0), num / den, 0.0)


def _tail(start: np.ndarray, n: np.ndarray, big_k: np.ndarray, m: np.ndarray, up: bool,
          above: float, below: float) -> np.ndarray:
    """P(X >= start) (up) or P(X <= start) (down), summed away from the mode term by term.

    Past the mode the ratios fall, so the remainder is at most a geometric series; a cell stops
    when that bound is under 1e-10 of its sum, or when its partial sum exceeds ``above``
    (returned: a lower bound), or when its sum plus the bound is under ``below`` (returned:
    the upper bound)."""
    out = np.empty(start.size)
    lead = _log_pmf(start, n, big_k, m)
    x, term, acc = start.copy(), np.ones(start.size), np.ones(start.size)
    live = np.arange(start.size)
    step = 0
    while live.size:
        term *= _ratio(x, n, big_k, m, up)
        acc += term
        x += 1 if up else -1
        step += 1
        if step % 8 and step > 2:
            continue
        after = _ratio(x, n, big_k, m, up)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rest = np.where(after < 1, term * after / (1 - after), np.inf)
        scale = np.exp(lead)
        low, high = scale * acc, scale * (acc + rest)
        done = (rest <= 1e-10 * acc) | (low > above) | (high < below)
        if done.any():
            out[live[done]] = np.where(high[done] < below, high[done], low[done])
            keep = ~done
            live, x, term, acc = live[keep], x[keep], term[keep], acc[keep]
            n, big_k, m, lead = n[keep], big_k[keep], m[keep], lead[keep]
    return out


def p_greater(failures: ArrayLike, count: ArrayLike, fail_total: ArrayLike, total: ArrayLike,
              stop: float = 1.0) -> np.ndarray:
    """One-sided Fisher exact test: P(X >= failures) for X ~ Hypergeom(total executions of
    which fail_total failed, count drawn) - a cell failing more often than the rest of its table.

    Summed from the pmf term by term away from the mode: the upper tail itself when
    ``failures`` is above the mean, else one minus the lower tail; exact to about 1e-8
    (relative). A p-value found to exceed ``stop`` is returned as a bound above ``stop``, not
    as the p-value. (scipy's ``hypergeom.sf`` gives the same numbers, but below ~150,000
    executions its cost grows with the population, ~0.2 ms a call at 100,000.)
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float)
                                   for a in (failures, count, fail_total, total)))
    shape = arrays[0].shape
    k, n, big_k, m = (a.ravel() for a in arrays)
    top, bottom = np.minimum(n, big_k), np.maximum(0.0, n - (m - big_k))
    p = np.where(k > top, 0.0, 1.0)
    inside = (k > bottom) & (k <= top)
    upper = np.flatnonzero(inside & (k > n * big_k / np.maximum(m, 1)))
    lower = np.flatnonzero(inside & (k <= n * big_k / np.maximum(m, 1)))
    if upper.size:
        p[upper] = np.minimum(1.0, _tail(k[upper], n[upper], big_k[upper], m[upper], True,
                                         stop, -1.0))
    if lower.size:
        p[lower] = np.clip(1 - _tail(k[lower] - 1, n[lower], big_k[lower], m[lower], False,
                                     2.0, 1 - stop), 0.0, 1.0)
    out: np.ndarray = p.reshape(shape)
    return out


def p_floor(count: ArrayLike, fail_total: ArrayLike, total: Counts) -> np.ndarray:
    """The smallest p_greater these margins allow: every draw a failure (Tarone's screen)."""
    drawn, failing = np.asarray(count, dtype=float), np.asarray(fail_total, dtype=float)
    floor: np.ndarray = np.exp(_log_pmf(np.minimum(drawn, failing), drawn, failing, total))
    return floor


def lifted(rate: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Whether a failure rate is practically above ``parts``: ``LIFT`` times the failures,
    or ``1 / LIFT`` times the passes."""
    return (rate >= LIFT * parts) | (1 - rate <= (1 - parts) / LIFT)


def wilson_low(failures: ArrayLike, count: ArrayLike, z: float = 1.96) -> np.ndarray:
    """Lower bound of the Wilson score interval of a failure rate (ranks rules by confidence
    and support at once)."""
    n = np.maximum(np.asarray(count, dtype=float), 1.0)
    phat = np.asarray(failures, dtype=float) / n
    centre = phat + z * z / (2 * n)
    spread = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    low: np.ndarray = (centre - spread) / (1 + z * z / n)
    return low


# ---------------------------------------------------------------------------------- counting

def _packs(columns: Sequence[int], sizes: Sequence[int], limit: int) -> list[list[int]]:
    packs: list[list[int]] = []
    current: list[int] = []
    product = 1
    for c in columns:
        if current and product * sizes[c] > limit:
            packs.append(current)
            current, product = [], 1
        current.append(c)
        product *= sizes[c]
    if current:
        packs.append(current)
    return packs


def _pack_code(levels: Sequence[np.ndarray], sizes: Sequence[int], pack: list[int]) -> np.ndarray:
    code = levels[pack[0]].astype(np.uint16)
    for c in pack[1:]:
        code *= np.uint16(sizes[c])
        code += levels[c]
    return code


def joint_tables(levels: Sequence[np.ndarray], sizes: Sequence[int], columns: Sequence[int],
                 order: int, failing: np.ndarray) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """Counts and failures of every value tuple of every ``order``-subset of ``columns``:
    ``{subset: (counts, failures)}``, each an array of shape ``(sizes[c] for c in subset)``.
    ``failing`` holds the row indices of the failing executions."""
    columns = sorted(columns)
    if len(columns) < order:
        return {}
    limit = max(2, math.floor(JOINT_BINS ** (1.0 / order) + 1e-9))
    packs = _packs(columns, sizes, limit)
    pack_of = {c: i for i, pack in enumerate(packs) for c in pack}
    width = min(order, len(packs))
    groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for subset in itertools.combinations(columns, order):
        key = sorted({pack_of[c] for c in subset})
        extra = (i for i in range(len(packs)) if i not in key)
        while len(key) < width:          # within-pack subsets ride along with a computed key
            key.append(next(extra))
        groups.setdefault(tuple(sorted(key)), []).append(subset)
    codes = [_pack_code(levels, sizes, pack) for pack in packs]
    fail_codes = [code[failing] for code in codes]
    pack_sizes = [math.prod(sizes[c] for c in pack) for pack in packs]
    out: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    for group, subsets in groups.items():
        dims = [sizes[c] for p in group for c in packs[p]]
        axis_of = {c: i for i, c in enumerate(c for p in group for c in packs[p])}
        space = math.prod(pack_sizes[p] for p in group)
        tables = []
        for source in (codes, fail_codes):
            code = source[group[0]].astype(np.intp)
            for p in group[1:]:
                code *= pack_sizes[p]
                code += source[p]
            tables.append(np.bincount(code, minlength=space).reshape(dims))
        for subset in subsets:
            drop = tuple(sorted(set(range(len(dims))) - {axis_of[c] for c in subset}))
            out[subset] = (tables[0].sum(axis=drop), tables[1].sum(axis=drop))
    return out


# ------------------------------------------------------------------------------------ search

@dataclass
class Combination:
    """A significant combination, as column indices and level indices."""

    columns: tuple[int, ...]
    levels: tuple[int, ...]
    count: int
    failures: int
    rate: float
    component_rate: float   # best failure rate among its proper sub-combinations
    lift: float             # rate / component_rate
    p_value: float
    q_value: float


@dataclass
class _Cells:
    columns: np.ndarray     # (k, order) column indices
    levels: np.ndarray      # (k, order) level indices
    count: np.ndarray
    failures: np.ndarray
    tests: list[tuple[np.ndarray, np.ndarray]]   # maximal parts: (count, failures) each
    parts_rate: np.ndarray  # best rate among all proper parts


Tables = Mapping[tuple[int, ...], tuple[np.ndarray, np.ndarray]]  # joint_tables' (counts, failures)


def _cells(subsets: Sequence[tuple[int, ...]], tables: Tables, testable: Sequence[np.ndarray],
           singles: Sequence[tuple[np.ndarray, np.ndarray]], pairs: Tables) -> _Cells | None:
    chunks = []
    for subset in subsets:
        counts, fails = tables[subset]
        ok = counts >= MIN_SUPPORT
        for axis, c in enumerate(subset):
            shape = [1] * len(subset)
            shape[axis] = -1
            ok &= testable[c].reshape(shape)
        index = np.nonzero(ok)
        if index[0].size:
            chunks.append((subset, index, counts[index], fails[index]))
    if not chunks:
        return None
    order = len(chunks[0][0])
    cols = np.concatenate([np.tile(np.array(s), (len(i[0]), 1)) for s, i, _, _ in chunks])
    levs = np.concatenate([np.stack(i, axis=1) for _, i, _, _ in chunks])
    count = np.concatenate([c for _, _, c, _ in chunks]).astype(np.int64)
    fails = np.concatenate([f for _, _, _, f in chunks]).astype(np.int64)
    single_rates = []
    for k in range(order):
        n = np.concatenate([singles[s[k]][0][i[k]] for s, i, _, _ in chunks])
        f = np.concatenate([singles[s[k]][1][i[k]] for s, i, _, _ in chunks])
        single_rates.append((n, f))
    if order == 2:
        tests = single_rates
        parts = [f / np.maximum(n, 1) for n, f in single_rates]
    else:
        tests = []
        for a, b in itertools.combinations(range(order), 2):
            n = np.concatenate([pairs[(s[a], s[b])][0][i[a], i[b]] for s, i, _, _ in chunks])
            f = np.concatenate([pairs[(s[a], s[b])][1][i[a], i[b]] for s, i, _, _ in chunks])
            tests.append((n.astype(np.int64), f.astype(np.int64)))
        parts = [f / np.maximum(n, 1) for n, f in tests + single_rates]
    return _Cells(cols, levs, count, fails, tests, np.max(parts, axis=0))


def _test(cells: _Cells, fail_total: int, total: int, fdr: float) -> tuple[np.ndarray, np.ndarray]:
    """IUT p-values and which cells survive Tarone's screen. A p-value above ``fdr`` is only
    known to be above it (see ``p_greater``); the comparisons run one after the other on the
    cells still below ``fdr``."""
    n, f = cells.count, cells.failures
    margins = [(np.full(n.size, total), np.full(n.size, fail_total))] + list(cells.tests)
    floor = np.max([p_floor(n, k, m) for m, k in margins], axis=0)
    testable = floor <= fdr
    go = testable.copy()
    for m, k in margins:
        go &= f > np.floor(n * k / np.maximum(m, 1))
    p = np.ones(n.size)
    live = np.flatnonzero(go)
    p[live] = 0.0
    for m, k in margins:
        if not live.size:
            break
        part = p_greater(f[live], n[live], k[live], m[live], stop=fdr)
        p[live] = np.maximum(p[live], part)
        live = live[part <= fdr]
    return p, testable


def search(levels: Sequence[np.ndarray], sizes: Sequence[int], testable: Sequence[np.ndarray],
           singles: Sequence[tuple[np.ndarray, np.ndarray]], failing: np.ndarray, total: int, *,
           columns: Sequence[int], ranking: Sequence[int], implicated: set[int], fdr: float,
           max_order: int, sparse: list[Combination] | None = None
           ) -> tuple[list[Combination], int, list[str]]:
    """Significant 2- and 3-way combinations, strongest first; also the number of combinations
    tested and notes on how the search was limited.

    ``singles[c]`` are column ``c``'s (counts, failures) per level; ``testable[c]`` says which
    levels may take part; ``ranking`` orders columns by their single-column impact and
    ``implicated`` holds those significant on their own (both choose the triple columns).
    Pairs below ``MIN_SUPPORT`` that look like interactions are appended to ``sparse`` (see
    ``_sparse``) when it is given.
    """
    fail_total = int(failing.size)
    notes: list[str] = []
    if max_order < 2 or len(columns) < 2:
        return [], 0, notes
    pairs = joint_tables(levels, sizes, columns, 2, failing)
    if sparse is not None:
        sparse += _sparse(pairs, testable, singles)
    found: list[_Cells] = []
    pvals: list[np.ndarray] = []
    cells2 = _cells(sorted(pairs), pairs, testable, singles, pairs)
    if cells2 is not None:
        p2, ok2 = _test(cells2, fail_total, total, fdr)
        found.append(_subset(cells2, ok2))
        pvals.append(p2[ok2])
    if max_order >= 3:
        provisional = set(implicated)
        if pvals and pvals[0].size:
            sig = _significant(found[0], pvals[0], fdr)
            provisional |= set(found[0].columns[sig].ravel().tolist())
        pool = [c for c in ranking if c in provisional and c in set(columns)]
        if len(pool) > TRIPLE_COLUMNS:
            notes.append(f"3-way search limited to the {TRIPLE_COLUMNS} strongest of "
                         f"{len(pool)} implicated columns")
            pool = pool[:TRIPLE_COLUMNS]
        if len(pool) >= 3:
            triples = joint_tables(levels, sizes, pool, 3, failing)
            cells3 = _cells(sorted(triples), triples, testable, singles, pairs)
            if cells3 is not None:
                p3, ok3 = _test(cells3, fail_total, total, fdr)
                found.append(_subset(cells3, ok3))
                pvals.append(p3[ok3])
        else:
            notes.append("3-way search skipped: fewer than 3 implicated columns")
    if not pvals:
        return [], 0, notes
    p_all = np.concatenate(pvals)
    q_all = bh(p_all)
    out: list[Combination] = []
    start = 0
    for cells, p in zip(found, pvals):
        q = q_all[start:start + p.size]
        start += p.size
        rate = cells.failures / np.maximum(cells.count, 1)
        lift = np.where(cells.parts_rate > 0, rate / np.maximum(cells.parts_rate, 1e-300), np.inf)
        for i in np.flatnonzero((q <= fdr) & lifted(rate, cells.parts_rate)):
            out.append(Combination(
                tuple(int(c) for c in cells.columns[i]), tuple(int(v) for v in cells.levels[i]),
                int(cells.count[i]), int(cells.failures[i]), float(rate[i]),
                float(cells.parts_rate[i]), float(lift[i]), float(p[i]), float(q[i])))
    out.sort(key=lambda c: (c.q_value, -c.lift, -c.count, c.columns, c.levels))
    if len(out) > MAX_INTERACTIONS:
        notes.append(f"{len(out)} significant combinations; the {MAX_INTERACTIONS} strongest kept")
        out = out[:MAX_INTERACTIONS]
    return out, int(p_all.size), notes


def _subset(cells: _Cells, keep: np.ndarray) -> _Cells:
    return _Cells(cells.columns[keep], cells.levels[keep], cells.count[keep],
                  cells.failures[keep], [(n[keep], f[keep]) for n, f in cells.tests],
                  cells.parts_rate[keep])


def _significant(cells: _Cells, p: np.ndarray, fdr: float) -> np.ndarray:
    rate = cells.failures / np.maximum(cells.count, 1)
    significant: np.ndarray = (bh(p) <= fdr) & lifted(rate, cells.parts_rate)
    return significant


MAX_SPARSE = 10   # interactions below the minimum support listed as notes


def _sparse(pairs: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]],
            testable: Sequence[np.ndarray], singles: Sequence[tuple[np.ndarray, np.ndarray]]
            ) -> list[Combination]:
    """Value pairs with too few executions to be tested (under ``MIN_SUPPORT``) that still look
    like an interaction: at least two failures, most of their executions failing, and a rate
    ``LIFT`` above both values' own. Not evidence, so never a rule; but dropping them silently
    hides where more executions are worth spending. Most failures first; p and q are NaN."""
    found: list[Combination] = []
    for (a, b), (counts, fails) in pairs.items():
        ok = (counts < MIN_SUPPORT) & (fails >= 2) & (2 * fails >= counts)
        ok &= testable[a][:, None] & testable[b][None, :]
        for i, j in zip(*np.nonzero(ok)):
            parts = max(singles[a][1][i] / max(singles[a][0][i], 1),
                        singles[b][1][j] / max(singles[b][0][j], 1))
            rate = fails[i, j] / counts[i, j]
            if lifted(np.array([rate]), np.array([parts]))[0]:
                found.append(Combination((a, b), (int(i), int(j)), int(counts[i, j]),
                                         int(fails[i, j]), float(rate), float(parts),
                                         float(rate / parts) if parts > 0 else math.inf,
                                         math.nan, math.nan))
    found.sort(key=lambda c: (-c.failures, -c.rate, c.columns, c.levels))
    return found[:MAX_SPARSE]
