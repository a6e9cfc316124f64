"""Algebraic covering arrays: Bush orthogonal arrays and the Kleitman-Spencer binary family.

* Bush: the polynomials of degree < t over GF(q), evaluated at every field element plus the
  leading coefficient ("the point at infinity"), form an OA(q^t, q+1, q, t) for t <= q: any t
  columns determine the polynomial, so every t-tuple of symbols appears exactly once.  A model
  with levels <= q and at most q+1 columns takes k of those columns; symbols a column does not
  have become free cells ("don't care"), and rows left with nothing to cover are dropped.
* Kleitman-Spencer: N rows cover C(N-1, ceil(N/2)) binary columns pairwise.  Column j is the
  indicator of a ceil(N/2)-subset of rows 1..N-1 (row 0 is all zeros and gives 00): two distinct
  subsets of equal size give 01 and 10, and two subsets larger than half of N-1 rows intersect (11).
  That is the smallest possible binary pairwise array, so nothing beats it.

Every function returns rows with -1 in free cells; the caller fills them and decides what to keep.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

# Above this many rows an OA is never competitive with the greedy array, and building it is slow.
MAX_OA_ROWS = 50_000


def _prime_power(q: int) -> tuple[int, int] | None:
    """(p, m) with q == p**m for a prime p, or None."""
    for p in range(2, q + 1):
        if q % p == 0:
            m, r = 0, q
            while r % p == 0:
                r //= p
                m += 1
            return (p, m) if r == 1 else None
    return None


def galois_field(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Addition and multiplication tables of GF(q), elements 0..q-1 (base-p digits = coefficients)."""
    pm = _prime_power(q)
    if pm is None:
        raise ValueError(f"{q} is not a prime power")
    p, m = pm
    digits = np.array([[(e // p**i) % p for i in range(m)] for e in range(q)], dtype=np.int64)
    weights = p ** np.arange(m)
    add = ((digits[:, None, :] + digits[None, :, :]) % p) @ weights
    if m == 1:
        return add, np.outer(np.arange(q), np.arange(q)) % p
    # Try monic polynomials x^m + low until the product table has no zero divisors (= a field).
    for low in range(q):
        red = digits[low]  # x^m == -low (mod f)
        mul = np.zeros((q, q), dtype=np.int64)
        for a in range(q):
            for b in range(q):
                prod = np.convolve(digits[a], digits[b]) % p  # degree <= 2m-2
                for d in range(2 * m - 2, m - 1, -1):  # reduce from the top coefficient down
                    c = prod[d]
                    if c:
                        prod[d] = 0
                        prod[d - m:d] = (prod[d - m:d] - c * red) % p
                mul[a, b] = prod[:m] @ weights
        if all(len(set(mul[a, 1:])) == q - 1 for a in range(1, q)):
            return add, mul
    raise AssertionError("no irreducible polynomial found")  # cannot happen for a prime power


def bush_oa(levels: np.ndarray, t: int) -> np.ndarray | None:
    """Rows of the smallest Bush OA that fits ``levels`` at strength t, -1 in free cells; or None."""
    k, vmax = len(levels), int(levels.max())
    q = max(vmax, t, k - 1, 2)
    while _prime_power(q) is None:
        q += 1
    # Worth it only near the trivial bound (product of the t largest levels); a much larger
    # q (many columns, few levels) wastes most rows and greedy does better.
    if q ** t > min(MAX_OA_ROWS, 2 * np.prod(np.sort(levels)[-t:])):
        return None
    add, mul = galois_field(q)
    coef = np.array(np.unravel_index(np.arange(q ** t), (q,) * t)).T  # row = polynomial
    cols = []
    for x in range(q):  # evaluate sum c_i x^i by Horner's rule in GF(q)
        acc = coef[:, t - 1]
        for i in range(t - 2, -1, -1):
            acc = add[mul[acc, x], coef[:, i]]
        cols.append(acc)
    cols.append(coef[:, t - 1])
    oa = np.stack(cols[:k], axis=1)
    # Relabel each column so that row 0 holds symbol q-1 everywhere: when symbols are collapsed
    # that whole row becomes free and can be dropped (any other row shares < t cells with it).
    top = oa[0].copy()
    oa = np.where(oa == top, q - 1, np.where(oa == q - 1, top, oa))
    return np.where(oa >= levels, -1, oa)


def kleitman_spencer(levels: np.ndarray) -> np.ndarray | None:
    """Smallest binary pairwise array for ``levels`` (all <= 2, at least two columns); or None."""
    k = len(levels)
    if k < 2 or levels.max() > 2:
        return None
    n = 4
    while comb(n - 1, (n + 1) // 2) < k:
        n += 1
    rows = np.zeros((n, k), dtype=np.int64)
    for j, subset in enumerate(combinations(range(1, n), (n + 1) // 2)):
        if j == k:
            break
        rows[list(subset), j] = 1
    return np.where(rows >= levels, -1, rows)


def full_factorial(levels: np.ndarray) -> np.ndarray:
    """Every row of the model: the only covering array when strength equals the column count."""
    return np.array(np.unravel_index(np.arange(int(np.prod(levels))), tuple(levels))).T


def constructions(levels: np.ndarray, t: int) -> list[np.ndarray]:
    """All algebraic candidates for an unconstrained model (rows with -1 for free cells)."""
    out = []
    if t >= len(levels):
        out.append(full_factorial(levels))
        return out
    for build in ((lambda: kleitman_spencer(levels)) if t == 2 else None, lambda: bush_oa(levels, t)):
        rows = build() if build else None
        if rows is not None:
            out.append(rows)
    return out
