"""t-way covering arrays over mixed-level models, with constraints, deterministic for a seed.

Approach: every t-tuple of (columns, levels) gets one index in a flat table, so "which tuples does
this row cover" is one numpy gather.  Candidates, smallest wins:

1. algebraic constructions (``covering_construct``) when there is no oracle: Kleitman-Spencer for
   binary pairwise (optimal), Bush orthogonal arrays (prime-power q >= levels, collapsed);
2. a density greedy in the AETG style: each new row starts from an uncovered tuple of the
   column set with most uncovered tuples, fills the other columns with the level covering most
   uncovered tuples (several candidate rows at once, vectorised), then hill-climbs the best row;
3. post-optimisation of the better array: delete the row covering fewest tuples alone, then
   repair with a tabu search (Nurmela's move: pick an uncovered tuple, overwrite the row where
   that costs least), repeat until an iteration budget is spent; the last complete array wins.

With an oracle a tuple is required only when consistent, greedy keeps every partial row
consistent, and every changed row is checked whole.  Budgets count iterations, never seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb
from typing import Any, Protocol

import numpy as np

from testfleet.space.covering_construct import constructions

__all__ = ["Oracle", "covering_array", "required_tuples"]


class Oracle(Protocol):
    """Constraint check for partial assignments (``{column: level index}``), used by the
    covering-array builder here and by :mod:`testfleet.space.coverage`."""

    def consistent(self, assignment: Mapping[int, int]) -> bool:
        """True when the partial assignment extends to a valid full row (may be slow: its
        callers cache the answers)."""
        ...


class _Checker:
    """Memoised oracle on sorted (column, level) items: the oracle runs a constraint search."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle
        self.memo: dict[tuple[tuple[int, int], ...], bool] = {}

    def __call__(self, items: tuple[tuple[int, int], ...]) -> bool:
        hit = self.memo.get(items)
        if hit is None:
            hit = self.memo[items] = bool(self.oracle.consistent(dict(items)))
        return hit

    def row(self, row: np.ndarray) -> bool:
        return self(tuple(enumerate(row.tolist())))


class _Space:
    """Flat indexing of all t-tuples: subset s of columns, levels (a, b, ..) -> off[s] + mixed radix.

    Index T is a sentinel for tuples with a free cell (-1); it is never required.  ``p_*`` arrays
    list every (subset, position) pair, sorted by column, to ask "what if this cell were v".
    """

    def __init__(self, levels: np.ndarray, t: int, check: _Checker | None) -> None:
        self.levels, self.t, self.k = levels, t, len(levels)
        self.vmax = int(levels.max())
        sub = np.array(list(combinations(range(self.k), t)), dtype=np.intp).reshape(-1, t)
        lv = levels[sub]
        strides = np.ones_like(lv)
        for j in range(t - 2, -1, -1):
            strides[:, j] = strides[:, j + 1] * lv[:, j + 1]
        sizes = lv.prod(axis=1)
        self.sub, self.lv, self.strides, self.sizes = sub, lv, strides, sizes
        self.off = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        self.T = int(sizes.sum())
        ps, pp = np.repeat(np.arange(len(sub)), t), np.tile(np.arange(t), len(sub))
        order = np.argsort(sub[ps, pp], kind="stable")
        ps, pp = ps[order], pp[order]
        others = np.array([[j for j in range(t) if j != p] for p in range(t)], dtype=np.intp).reshape(t, t - 1)
        self.p_col, self.p_stride, self.p_off = sub[ps, pp], strides[ps, pp], self.off[ps]
        self.p_ocols, self.p_ostr = sub[ps[:, None], others[pp]], strides[ps[:, None], others[pp]]
        self.p_start = np.searchsorted(self.p_col, np.arange(self.k + 1))
        v = np.arange(self.vmax)
        self.p_valid = v < levels[self.p_col][:, None]
        self.p_key = (self.p_col[:, None] * self.vmax + v)[self.p_valid]
        self.req = np.ones(self.T + 1, dtype=bool)
        self.req[self.T] = False
        if check is not None:
            self._constrain(check)
        self._aff: dict[int, tuple[Any, ...]] = {}

    def _constrain(self, check: _Checker) -> None:
        """Require only consistent tuples; a tuple with an inconsistent sub-tuple is skipped unasked."""
        if not check(()):
            self.req[:] = False
            return
        ok: dict[tuple[tuple[int, int], ...], bool] = {(): True}
        for j in range(1, self.t + 1):
            for cols in combinations(range(self.k), j):
                for vals in np.ndindex(*self.levels[list(cols)]):
                    items = tuple(zip(cols, vals))
                    ok[items] = all(ok[items[:i] + items[i + 1:]] for i in range(j)) and check(items)
        for s, sub_cols in enumerate(self.sub.tolist()):
            for i, vals in enumerate(np.ndindex(*self.lv[s])):
                self.req[self.off[s] + i] = ok[tuple(zip(sub_cols, vals))]

    def ids(self, rows: np.ndarray) -> np.ndarray:
        """(n, k) rows -> (n, n_subsets) tuple indices; T where the tuple has a free cell."""
        x = rows[:, self.sub]
        ids = self.off + (x * self.strides).sum(-1)
        return np.where((x < 0).any(-1), self.T, ids)

    def decode(self, idx: int) -> tuple[int, np.ndarray]:
        s = int(np.searchsorted(self.off, idx, side="right")) - 1
        return s, (idx - self.off[s]) // self.strides[s] % self.lv[s]

    def gains(self, row: np.ndarray, unc: np.ndarray) -> np.ndarray:
        """(k, vmax): uncovered tuples the row would cover with cell (c, v), the rest unchanged."""
        base = self.p_off + (row[self.p_ocols] * self.p_ostr).sum(-1)
        ids = base[:, None] + np.arange(self.vmax) * self.p_stride[:, None]
        hit = unc[ids[self.p_valid]]
        g = np.bincount(self.p_key, weights=hit, minlength=self.k * self.vmax).reshape(self.k, self.vmax)
        g[np.arange(self.vmax) >= self.levels[:, None]] = -1
        return g

    def affected(self, s: int) -> tuple[Any, ...]:
        """Subsets sharing a column with subset s, and where s's columns sit in them (cached)."""
        if s not in self._aff:
            cols = self.sub[s]
            aff = np.flatnonzero(np.isin(self.sub, cols).any(1))
            eq = self.sub[aff][:, :, None] == cols
            self._aff[s] = (aff, eq.any(-1), eq.argmax(-1), self.sub[aff], self.strides[aff], self.off[aff])
        return self._aff[s]


def _greedy(sp: _Space, cnt: np.ndarray, rng: np.random.Generator, n_cand: int,
            check: _Checker | None) -> list[np.ndarray]:
    """New rows until every required tuple is covered (``cnt`` is updated in place)."""
    unc = sp.req & (cnt == 0)
    out: list[np.ndarray] = []
    while unc.any():
        per = np.add.reduceat(unc[:-1], sp.off)
        s = int(rng.choice(np.flatnonzero(per == per.max())))
        todo = np.flatnonzero(unc[sp.off[s]:sp.off[s] + sp.sizes[s]])
        pick = rng.choice(todo, size=n_cand, replace=len(todo) < n_cand)
        rows = np.full((n_cand, sp.k), -1, dtype=np.intp)
        rows[:, sp.sub[s]] = pick[:, None] // sp.strides[s] % sp.lv[s]
        fixed = np.zeros(sp.k, dtype=bool)
        fixed[sp.sub[s]] = True
        alive = np.ones(n_cand, dtype=bool)
        covered = np.zeros(n_cand, dtype=np.int64)
        # Columns in most uncovered tuples first (random among equals): they matter most.
        rest = np.flatnonzero(~fixed)
        weight = np.bincount(sp.sub.ravel(), weights=np.repeat(per, sp.t), minlength=sp.k)[rest]
        for c in rest[np.lexsort((rng.random(len(rest)), -weight))]:
            lo, hi = sp.p_start[c], sp.p_start[c + 1]
            sel = lo + np.flatnonzero(fixed[sp.p_ocols[lo:hi]].all(1))
            base = sp.p_off[sel] + (rows[:, sp.p_ocols[sel]] * sp.p_ostr[sel]).sum(-1)
            ids = base[:, :, None] + np.arange(sp.levels[c]) * sp.p_stride[sel][None, :, None]
            gain = unc[ids].sum(1)
            score = gain + rng.random((n_cand, sp.levels[c])) * 0.5  # noise breaks ties
            if check is None:
                rows[:, c] = score.argmax(1)
            else:  # best level whose partial row is still consistent
                score[(~sp.req[ids]).any(1)] = -1  # makes an inconsistent tuple: no need to ask
                for m in np.flatnonzero(alive):
                    part = [(int(j), int(rows[m, j])) for j in np.flatnonzero(fixed)] + [(int(c), -1)]
                    for v in np.argsort(-score[m]):
                        part[-1] = (int(c), int(v))
                        if score[m, v] >= 0 and check(tuple(sorted(part))):
                            rows[m, c] = v
                            break
                    else:
                        alive[m] = False
            covered += gain[np.arange(n_cand), rows[:, c]]  # tuples this cell completes
            fixed[c] = True
        if not alive.any():
            raise RuntimeError("oracle says a required tuple extends to no valid row")
        cover = np.where(alive, covered, -1) + rng.random(n_cand) * 0.5
        row = _hill_climb(sp, rows[int(cover.argmax())], unc, rng, check)
        ids = sp.ids(row[None])[0]
        cnt[ids] += 1
        unc[ids] = False
        out.append(row)
    return out


def _hill_climb(sp: _Space, row: np.ndarray, unc: np.ndarray, rng: np.random.Generator,
                check: _Checker | None) -> np.ndarray:
    """Change single cells while that covers more uncovered tuples (a cheap polish of one row)."""
    row = row.copy()
    # A few steps get most of the gain; each one is a pass over every tuple.
    for _ in range(8 if len(sp.p_col) * sp.vmax < 200_000 else 2):
        g = sp.gains(row, unc)
        imp = g - g[np.arange(sp.k), row][:, None] + rng.random(g.shape) * 0.5
        if check is not None:  # moves that create an inconsistent tuple cannot be valid
            imp[sp.gains(row, ~sp.req) > 0] = -1
        for flat in np.argsort(-imp, axis=None)[:8 if check else 1]:
            if imp.flat[flat] < 1:  # integer gains: below 1 is noise only
                return row
            new = row.copy()
            new[divmod(int(flat), sp.vmax)[0]] = int(flat) % sp.vmax
            if check is None or check.row(new):
                row = new
                break
        else:
            return row
    return row


def _optimise(sp: _Space, rows: np.ndarray, base: np.ndarray, floor: int, budget: int,
              rng: np.random.Generator, check: _Checker | None) -> np.ndarray:
    """Delete a row, repair by tabu search; repeat until ``budget`` moves are spent.

    ``base`` counts what the caller's fixed rows cover; only ``rows`` change.

    A move takes a random uncovered tuple and writes it into the row where that loses fewest
    tuples covered nowhere else, even when that makes things worse (the search must cross
    plateaus); cells changed in the last two moves stay put, unless changing them finishes.
    """
    best = rows
    rows = rows.astype(np.intp)
    ids = sp.ids(rows)
    cnt = base + np.bincount(ids.ravel(), minlength=sp.T + 1)
    req = sp.req
    it = 0
    while it < budget and rows.shape[0] > floor:
        alone = ((cnt[ids] == 1) & req[ids]).sum(1) + rng.random(len(ids)) * 0.5
        r = int(alone.argmin())
        cnt[ids[r]] -= 1  # a row's tuple indices are distinct (one per column subset)
        rows, ids = np.delete(rows, r, 0), np.delete(ids, r, 0)
        tabu = np.zeros(rows.shape, dtype=np.int64)
        missing = int(((cnt == 0) & req).sum())
        while missing and it < budget:
            it += 1
            todo = np.flatnonzero((cnt == 0) & req)
            s, vals = sp.decode(int(todo[rng.integers(len(todo))]))
            aff, mask, pos, asub, astr, aoff = sp.affected(s)
            cols = sp.sub[s]
            new = aoff + (np.where(mask, vals[pos], rows[:, asub]) * astr).sum(-1)
            old = ids[:, aff]
            ch = old != new
            delta = (ch & (cnt[old] == 1) & req[old]).sum(1) - (ch & (cnt[new] == 0) & req[new]).sum(1)
            diff = rows[:, cols] != vals
            score = delta + rng.random(len(delta)) * 0.5  # random tie-break
            score[(diff & (tabu[:, cols] > it)).any(1) & (missing + delta > 0)] = np.inf
            if check is not None:  # a row holding an inconsistent tuple is invalid: skip the oracle
                score[(~req[new]).any(1)] = np.inf
            for r in np.argsort(score)[:4] if check else [int(score.argmin())]:
                if score[r] == np.inf:
                    break
                row = rows[r].copy()
                row[cols] = vals
                if check is None or check.row(row):
                    cnt[old[r][ch[r]]] -= 1
                    cnt[new[r][ch[r]]] += 1
                    ids[r, aff], rows[r] = new[r], row
                    tabu[r, cols[diff[r]]] = it + 2
                    missing += int(delta[r])
                    break
        if missing == 0:
            best = rows.copy()
    return best


def _prune(sp: _Space, rows: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Drop rows that cover nothing alone (after ``base``'s coverage); fill free cells with 0."""
    ids = sp.ids(rows)
    cnt = base + np.bincount(ids.ravel(), minlength=sp.T + 1)
    keep = np.ones(len(rows), dtype=bool)
    while keep.any():
        alone = ((cnt[ids] == 1) & sp.req[ids]).sum(1)
        idle = np.flatnonzero(keep & (alone == 0))
        if not len(idle):
            break
        keep[idle[0]] = False
        np.subtract.at(cnt, ids[idle[0]], 1)
    kept: np.ndarray = np.maximum(rows[keep], 0)
    return kept


def _lower_bound(sp: _Space, cnt: np.ndarray, binary_model: bool) -> int:
    """No array is smaller: each row covers one tuple per column subset (so the fullest subset
    needs that many rows); a binary pairwise model needs the Kleitman-Spencer size."""
    todo = sp.req & (cnt == 0)
    bound = int(np.add.reduceat(todo[:-1], sp.off).max()) if sp.T else 0
    if binary_model and sp.t == 2:
        n = 4
        while comb(n - 1, (n + 1) // 2) < sp.k:
            n += 1
        bound = max(bound, n)
    return bound


def _validate(levels: Sequence[int], strength: int) -> tuple[np.ndarray, int]:
    lv = np.array([int(v) for v in levels], dtype=np.intp)
    if int(strength) < 1:
        raise ValueError(f"strength must be at least 1, got {strength}")
    if (lv < 1).any():
        raise ValueError(f"every column needs at least one level, got {list(levels)}")
    return lv, min(int(strength), len(lv))


def required_tuples(levels: Sequence[int], strength: int = 2, oracle: Oracle | None = None) -> int:
    """How many t-tuples a covering array for this model must cover (consistent ones only)."""
    lv, t = _validate(levels, strength)
    if not len(lv):
        return 0
    return int(_Space(lv, t, _Checker(oracle) if oracle is not None else None).req.sum())


def covering_array(levels: Sequence[int], strength: int = 2, *, seed: int = 0,
                   oracle: Oracle | None = None, existing: np.ndarray | None = None,
                   effort: int = 1) -> np.ndarray:
    """Rows (n, k) of level indices covering every consistent t-tuple; ``existing`` rows first.

    Same inputs and seed give the same array.  ``effort`` scales the post-optimisation budget
    (0: greedy and constructions only).  Every added row is oracle-consistent.
    """
    lv, t = _validate(levels, strength)
    if effort < 0:
        raise ValueError(f"effort must be >= 0, got {effort}")
    k = len(lv)
    dtype = np.int16 if lv.max(initial=1) <= np.iinfo(np.int16).max else np.int32
    old = np.asarray(existing if existing is not None and np.size(existing) else np.zeros((0, k), np.intp))
    if (old.ndim != 2 or old.shape[1] != k or (old.size and not np.issubdtype(old.dtype, np.integer))
            or (old.size and ((old < 0) | (old >= lv)).any())):
        raise ValueError(f"existing must be (m, {k}) integer level indices within levels")
    old = old.astype(np.intp)
    if k == 0:
        return old.astype(dtype)
    check = _Checker(oracle) if oracle is not None else None
    sp = _Space(lv, t, check)
    rng = np.random.default_rng(int(seed) % 2**128)  # any int, negative ones too
    base = np.bincount(sp.ids(old).ravel(), minlength=sp.T + 1)
    binary = not len(old) and check is None and bool((lv == 2).all())
    bound = _lower_bound(sp, base, binary)
    found = [] if check is not None else [_prune(sp, rows, base) for rows in constructions(lv, t)]
    # Constructions are only offered near the trivial bound, where greedy never wins; with
    # existing rows they may waste rows, so greedy competes.
    if not found or len(old):
        n_cand = 4 if check else int(np.clip(2_000_000 // sp.T, 2, 16))  # a candidate costs ~T
        found.append(np.array(_greedy(sp, base.copy(), rng, n_cand, check),
                              dtype=np.intp).reshape(-1, k))
    rows = min(found, key=len)
    if effort > 0 and len(rows) > bound:
        # A move costs a fixed overhead plus work proportional to rows x affected subsets (and
        # more per cell once arrays outgrow the caches): about a second of moves at effort 1.
        work = len(rows) * len(sp.affected(0)[0]) * t
        budget = effort * max(20, 250_000_000 // (30_000 + work + work * work // 300_000))
        rows = _optimise(sp, rows, base, bound, budget, rng, check)
    # A repair can leave a row that only repeats others: every added row must fill a gap.
    return np.concatenate([old, _prune(sp, rows, base)]).astype(dtype)
