"""Simplifying one changed value while a test still fails: the "how far" steps of
:mod:`testfleet.mutation.minimize`.

Every function here takes ``probe(value) -> bool``: True when the whole variant with that value
still fails (the caller then keeps the value), False when it passes, is outside the space or
could not be judged. Each function returns the simplest failing value it reached. All assume the
failure is monotone (further from the baseline fails more), as delta debugging does, and all are
deterministic.

- numbers: the special values between the two ends (powers of two and of ten, each +-1) are
  searched first, because real boundaries sit there (``2147483648`` in two probes rather than
  31), then the remaining interval is bisected exactly: integers to the integer (or the grid
  value) next to the boundary, floats to a tolerance and then to the shortest decimal inside
  the last interval;
- text: when only its length matters (as many ``a`` fail too), the shortest failing run of
  ``a`` by bisection; else deletions by :func:`ddmin` over the characters (chunks, then single
  characters), then each character that is not plain ASCII replaced by a plain one while it
  still fails;
- lists: elements removed by ddmin, never below a given length;
- orders: the baseline's item swapped back into each position while it still fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, TypeVar

__all__ = ["PLAIN", "ddmin", "landmarks", "repair_order", "shrink_float", "shrink_grid",
           "shrink_dict", "shrink_list", "shrink_text", "simplest_between"]

Probe = Callable[[Any], bool]
T = TypeVar("T")

#: Characters a text is simplified to; a character outside this set is "special".
PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: The plain characters tried in place of a special one, in order (the first the space allows).
REPLACEMENTS = ("a", "0")


def _split(items: list[Any], n: int) -> list[list[Any]]:
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return [c for c in chunks if c]


def ddmin(items: Sequence[Any], fails: Callable[[list[Any]], bool]) -> list[Any]:
    """Zeller's ddmin: a 1-minimal sublist of ``items`` (order kept) for which ``fails`` holds,
    assuming it holds for ``items`` and not for the empty list: removing any one element of the
    result makes ``fails`` false."""
    current, n = list(items), 2
    while len(current) >= 2:
        chunks = _split(current, n)
        reduced = next((c for c in chunks if fails(c)), None)
        if reduced is not None:
            current, n = reduced, 2
            continue
        if len(chunks) > 2:  # with two chunks the complements are the chunks again
            for i in range(len(chunks)):
                complement = [x for j, c in enumerate(chunks) if j != i for x in c]
                if fails(complement):
                    reduced = complement
                    break
        if reduced is not None:
            current, n = reduced, max(n - 1, 2)
            continue
        if n >= len(current):
            break
        n = min(2 * n, len(current))
    return current


# -- numbers -----------------------------------------------------------------------------------

def _special_magnitudes() -> list[int]:
    out: set[int] = set()
    for k in range(0, 65):
        out.update((2**k - 1, 2**k, 2**k + 1))
    for k in range(0, 20):
        out.update((10**k - 1, 10**k, 10**k + 1))
    return sorted(out)


_MAGNITUDES = _special_magnitudes()


def landmarks(lo: float, hi: float) -> list[int]:
    """The special integers strictly between ``lo`` and ``hi`` (either sign), ascending:
    ``2^k - 1, 2^k, 2^k + 1`` and ``10^k - 1, 10^k, 10^k + 1``, and 0."""
    values = {m for m in _MAGNITUDES} | {-m for m in _MAGNITUDES}
    return sorted(v for v in values if lo < v < hi)


def _between_marks(marks: Sequence[T], lo: T, hi: T, fails: Callable[[T], bool]) -> tuple[T, T]:
    """``(lo, hi)`` narrowed to two neighbours among ``marks`` (ordered from ``lo``, which
    passes, toward ``hi``, which fails) by bisecting over the marks: the first that fails and
    the last before it that passes."""
    a, b = -1, len(marks)  # positions in marks: a passes (or -1), b fails (or the end)
    while b - a > 1:
        mid = (a + b) // 2
        if fails(marks[mid]):
            b, hi = mid, marks[mid]
        else:
            a, lo = mid, marks[mid]
    return lo, hi


def _search(count: int, fails_at: Callable[[int], bool], marks: Sequence[int]) -> int:
    """The smallest index in ``0..count`` that fails, where ``count`` is known to fail and -1
    to pass: the indices in ``marks`` (ascending, inside the range) are searched first, then
    the interval left between two of them is bisected."""
    lo, hi = _between_marks([j for j in marks if -1 < j < count], -1, count, fails_at)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails_at(mid):
            hi = mid
        else:
            lo = mid
    return hi


def shrink_grid(probe: Probe, old: Any, new: Any, anchor: Any, step: Any, *,
                exact: bool) -> Any:
    """The grid value (``anchor + k * step``) nearest ``old`` that still fails, searching the
    grid values strictly between ``old`` (passes) and ``new`` (fails)."""
    ints = exact and all(isinstance(x, int) for x in (old, new, anchor, step))
    if ints:
        p_old, p_new = Fraction(old - anchor, step), Fraction(new - anchor, step)
        eps: Any = 0
    else:
        p_old, p_new = (old - anchor) / step, (new - anchor) / step
        eps = 1e-9 * max(1.0, abs(p_old), abs(p_new))
    if new > old:
        first, direction = math.floor(p_old + eps) + 1, 1
        count = max(0, math.ceil(p_new - eps) - first)
    else:
        first, direction = math.ceil(p_old - eps) - 1, -1
        count = max(0, first - math.floor(p_new + eps))

    def value(j: int) -> Any:
        if j == count:
            return new
        k = first + direction * j
        if ints:
            return anchor + k * step
        return float(f"{anchor + k * step:.12g}")

    def index(v: float) -> set[int]:  # the grid indices next to a special value
        p = (Fraction(v - anchor, step) if ints else (v - anchor) / step)
        return {(math.floor(p) - first) * direction, (math.ceil(p) - first) * direction}

    marks = sorted({j for v in landmarks(min(old, new), max(old, new)) for j in index(v)
                    if 0 <= j < count})
    results: dict[int, bool] = {}

    def fails_at(j: int) -> bool:
        if j not in results:
            results[j] = probe(value(j))
        return results[j]

    return value(_search(count, fails_at, marks))


def simplest_between(lo: float, hi: float) -> float:
    """The number with the fewest significant digits in the half-open interval from ``lo``
    (excluded) to ``hi`` (included), either order; ``hi`` itself when none is shorter."""
    low, high = min(lo, hi), max(lo, hi)
    top = max(abs(low), abs(high))
    if low == high or top == 0 or not math.isfinite(top):
        return hi
    exponent = math.floor(math.log10(top))
    for digits in range(1, 18):
        places = digits - 1 - exponent  # decimal places of a quantum of that many digits
        quantum = 10.0 ** -places
        # the multiple of the quantum nearest hi on lo's side (hi fails; it is the safer bet)
        k = math.floor(hi / quantum) if hi > lo else math.ceil(hi / quantum)
        v = round(k * quantum, max(places, 0))
        if low < v < high or v == hi:
            return float(v)
    return hi


def shrink_float(probe: Probe, old: float, new: float, tolerance: float) -> float:
    """The failing float nearest ``old``, to within ``tolerance``: special values first, then
    bisection, then the shortest decimal inside the last interval when it fails too."""
    inner = [float(v) for v in landmarks(min(old, new), max(old, new))]
    if new < old:
        inner.reverse()
    lo, hi = _between_marks(inner, old, new, probe)
    while abs(hi - lo) > tolerance:
        mid = lo + (hi - lo) / 2
        if mid in (lo, hi):
            break
        if probe(mid):
            hi = mid
        else:
            lo = mid
    simple = simplest_between(lo, hi)
    if simple != hi and probe(simple):
        hi = simple
    return hi


# -- text, lists, orders -----------------------------------------------------------------------

def shrink_text(probe: Probe, text: str, *, allowed: Callable[[str], bool] | None = None) -> str:
    """A failing text made of as few and as plain characters as possible: the empty text when
    it fails; else, when the same length of ``a`` fails too (only the length matters), the
    shortest such run; else a 1-minimal subsequence by deletion, then special characters
    replaced by ``a`` (or ``0`` where ``allowed`` refuses ``a``) one at a time."""
    if not text:
        return text
    if probe(""):
        return ""
    filler = next((c for c in REPLACEMENTS if allowed is None or allowed(c * len(text))), None)
    if filler is not None and filler * len(text) != text and probe(filler * len(text)):
        # only the length matters: the shortest run of one plain character that still fails,
        # found by bisection (ddmin would take about two probes per character here)
        n = len(text)
        k = _search(n - 1, lambda j: probe(filler * (j + 1)), [v - 1 for v in landmarks(0, n)])
        return filler * (k + 1)
    chars = ddmin(list(text), lambda keep: probe("".join(keep)))
    current = "".join(chars)
    for i in range(len(current)):
        if current[i] in PLAIN:
            continue
        for plain in REPLACEMENTS:
            candidate = current[:i] + plain + current[i + 1:]
            if allowed is not None and not allowed(candidate):
                continue
            if probe(candidate):
                current = candidate
            break  # one executed try per character: the first plain one the space allows
    return current


def shrink_list(probe: Probe, items: list[Any], shortest: int) -> list[Any]:
    """A 1-minimal sublist (order kept) of at least ``shortest`` elements that still fails."""
    if len(items) <= max(shortest, 1):
        return items
    kept = ddmin(list(range(len(items))),
                 lambda keep: len(keep) >= shortest and probe([items[i] for i in keep]))
    return [items[i] for i in kept]


def shrink_dict(probe: Probe, old: dict[str, Any], new: dict[str, Any],
                same: Callable[[Any, Any], bool]) -> dict[str, Any]:
    """A dict value (a configuration block, a JSON body) with as few of its keys changed from
    ``old`` as still fails: ddmin over the keys that differ, the others back to ``old``'s value
    (a key ``old`` lacks is dropped)."""
    differ = [k for k in new if k not in old or not same(old[k], new[k])] \
        + [k for k in old if k not in new]

    def build(keep: list[str]) -> dict[str, Any]:
        out = {k: v for k, v in old.items() if k in new or k not in keep}
        for k in keep:
            if k in new:
                out[k] = new[k]
        return {k: out[k] for k in [*new, *old] if k in out}  # new's key order first

    return build(ddmin(differ, lambda keep: probe(build(keep))))


def repair_order(probe: Probe, current: list[Any], target: list[Any],
                 same: Callable[[Any, Any], bool]) -> list[Any]:
    """Swap ``target``'s items back into place, position by position, keeping a swap while it
    still fails; passes repeat until no swap is kept."""
    kept = True
    while kept:
        kept = False
        for i in range(len(target)):
            if same(current[i], target[i]):
                continue
            j = next((j for j in range(len(current))
                      if j != i and same(current[j], target[i])
                      and not same(current[j], target[j])), None)
            if j is None:
                continue
            candidate = list(current)
            candidate[i], candidate[j] = candidate[j], candidate[i]
            if probe(candidate):
                current, kept = candidate, True
    return current
