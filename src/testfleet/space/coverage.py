"""Combinatorial coverage measurement in the manner of NIST IR 7878 (Kuhn, Kacker, Lei).

A *model* is the number of levels of each dimension (numeric dimensions are binned into levels
by the caller); a *row* is one executed point, a level index per dimension. For a strength
``t``, a *t-way combination* is a set of ``t`` columns and a *tuple* (variable-value
configuration) is one assignment of levels to those columns. Measures:

* simple t-way coverage: covered tuples / valid tuples, over all combinations;
* per-combination coverage: the same ratio inside one combination;
* (p,t)-completeness: the share of combinations whose coverage is at least ``p``; the curve
  over ``p`` is the NIST "spanning" chart, its value at ``p = 1`` the share fully covered and
  its lowest per-combination coverage ``M_t``.

Approach: every combination's tuples are numbered by mixed-radix encoding of its columns
(``((l0 * L1 + l1) * L2 + l2) ...``, the C order of ``np.unravel_index``), so one
``np.bincount`` over a vector of codes counts every tuple of that combination at once; Python
only loops over column subsets, never over rows. Codes are built by Horner's rule, so the code
of a column prefix is reused by every combination that shares it (``itertools.combinations``
yields them in lexicographic order), and they are kept in the narrowest unsigned dtype that
holds the largest tuple space, which makes the adds and ``bincount`` cheaper.

An optional :class:`Oracle` says which partial assignments can be part of a valid point;
tuples it rejects are *invalid* and leave both numerator and denominator, even when some row
contains them (such a row was not a valid point). Answers are cached, and a level the oracle
rejects on its own makes every tuple containing it invalid without asking again (a partial
assignment that cannot be extended cannot be extended once enlarged either).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from testfleet.errors import SpaceError
from testfleet.space.covering import Oracle

#: the ``p`` thresholds of the (p,t)-completeness curve: 0, 0.05, ..., 1.0
THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))
#: one combination's tuple space above this is refused: its bincount alone would take > 128 MiB
MAX_TUPLE_SPACE = 1 << 24
_TOLERANCE = 1e-12  # fractions such as 3/20 and the threshold 0.15 are compared with slack


@dataclass(frozen=True)
class CombinationCoverage:
    """Coverage inside one t-way column combination."""

    columns: tuple[int, ...]
    covered: int
    valid: int
    fraction: float


@dataclass(frozen=True)
class Gap:
    """A valid tuple no executed row contains; larger ``importance`` means look at it first."""

    columns: tuple[int, ...]
    levels: tuple[int, ...]
    importance: float


@dataclass
class CoverageReport:
    """What :func:`measure` found; :meth:`gaps` lists the missing tuples, most important first."""

    strength: int
    rows: int
    valid_tuples: int
    covered_tuples: int
    simple: float
    combinations: list[CombinationCoverage]
    completeness: list[tuple[float, float]]
    full_combinations: float
    minimum: float
    levels: tuple[int, ...] = ()
    invalid_tuples: int = 0  # tuples the oracle rejected (not in any denominator)
    # per combination (same order as ``combinations``): the codes of its missing valid tuples
    _missing: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)
    # per column: how often each level occurs in the rows (the rarity of a gap's values)
    _marginals: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    def gaps(self, limit: int | None = None) -> list[Gap]:
        """Missing valid tuples: worst-covered combinations first, then rarest values.

        Order: combination coverage ascending, then the expected share of rows holding the
        tuple if columns were independent (product of its levels' marginal frequencies)
        ascending, then columns and levels. ``importance`` is ``1 - coverage`` plus a rarity
        bonus ``(1 - expected share) * d`` with ``d`` half the smallest step between distinct
        combination coverages, so it falls strictly along that order between combinations.
        """
        if limit is not None and limit <= 0:
            return []
        pieces = [(i, codes) for i, codes in enumerate(self._missing) if codes.size]
        if not pieces:
            return []
        combo_idx = np.concatenate([np.full(codes.size, i, np.int64) for i, codes in pieces])
        codes = np.concatenate([codes.astype(np.int64) for _, codes in pieces])
        fractions = np.array([c.fraction for c in self.combinations])
        shares = np.concatenate([self._expected_share(i, c) for i, c in pieces])
        gap_fraction = fractions[combo_idx]
        order = np.lexsort((codes, combo_idx, shares, gap_fraction))  # last key sorts first
        if limit is not None:
            order = order[:limit]
        distinct = np.unique(fractions)
        step = float(np.min(np.diff(distinct))) / 2 if distinct.size > 1 else 1.0
        importance = (1.0 - gap_fraction[order]) + (1.0 - shares[order]) * step
        result = []
        for rank, pos in enumerate(order):
            columns = self.combinations[combo_idx[pos]].columns
            dims = tuple(self.levels[c] for c in columns)
            levels = tuple(int(v) for v in np.unravel_index(int(codes[pos]), dims))
            result.append(Gap(columns, levels, float(importance[rank])))
        return result

    def _expected_share(self, index: int, codes: np.ndarray) -> np.ndarray:
        columns = self.combinations[index].columns
        digits = np.unravel_index(codes, tuple(self.levels[c] for c in columns))
        share = np.ones(codes.size)
        for column, digit in zip(columns, digits):
            marginal = self._marginals[column]
            share *= marginal[digit] / max(self.rows, 1)
        return share

    def to_dict(self, names: Sequence[str] | None = None,
                level_labels: Sequence[Sequence[Any]] | None = None, *,
                gap_limit: int | None = 100) -> dict[str, Any]:
        """A JSON-ready summary; ``names``/``level_labels`` replace column and level indices.

        Combinations and gaps keep their indices too (``indices``, ``level_indices``), so a
        reader never has to parse names back.
        """
        def name(column: int) -> str:
            return str(names[column]) if names is not None else str(column)

        def label(column: int, level: int) -> Any:
            if level_labels is not None and level_labels[column] is not None:
                value = level_labels[column][level]
                if isinstance(value, np.generic):
                    value = value.item()
                return value if isinstance(value, (str, int, float, bool)) else str(value)
            return level

        all_gaps = sum(int(codes.size) for codes in self._missing)
        return {
            "strength": self.strength,
            "rows": self.rows,
            "levels": list(self.levels),
            "valid_tuples": self.valid_tuples,
            "covered_tuples": self.covered_tuples,
            "invalid_tuples": self.invalid_tuples,
            "simple": self.simple,
            "full_combinations": self.full_combinations,
            "minimum": self.minimum,
            "completeness": [{"p": p, "fraction": f} for p, f in self.completeness],
            "combinations": [
                {"columns": [name(c) for c in combo.columns], "indices": list(combo.columns),
                 "covered": combo.covered, "valid": combo.valid, "fraction": combo.fraction}
                for combo in self.combinations
            ],
            "gaps_total": all_gaps,
            "gaps": [
                {"columns": [name(c) for c in gap.columns], "indices": list(gap.columns),
                 "levels": [label(c, v) for c, v in zip(gap.columns, gap.levels)],
                 "level_indices": list(gap.levels), "importance": gap.importance}
                for gap in self.gaps(gap_limit)
            ],
        }


def measure(levels: Sequence[int], rows: np.ndarray, strength: int = 2, *,
            oracle: Oracle | None = None) -> CoverageReport:
    """Measure the t-way coverage (``t = strength``) that ``rows`` reach in the model ``levels``."""
    dims, matrix = _check(levels, rows)
    k = len(dims)
    if not 1 <= strength <= k:
        raise SpaceError(f"coverage strength {strength} needs 1..{k} dimensions",
                         expected=f"a strength between 1 and {k}")
    n = int(matrix.shape[0])
    checker = _ValidityCache(oracle, dims) if oracle is not None else None
    combinations: list[CombinationCoverage] = []
    missing: list[np.ndarray] = []
    invalid = 0
    for columns, counts in _tuple_counts(dims, matrix, strength):
        seen = counts > 0
        if checker is None:
            valid_count = seen.size
            gap_codes = np.flatnonzero(~seen)
        else:
            valid = checker.valid_mask(columns)
            valid_count = int(np.count_nonzero(valid))
            invalid += valid.size - valid_count
            seen &= valid
            gap_codes = np.flatnonzero(valid & ~seen)
        covered = int(np.count_nonzero(seen))
        # a combination the oracle rules out entirely has nothing left to cover
        fraction = covered / valid_count if valid_count else 1.0
        combinations.append(CombinationCoverage(columns, covered, valid_count, fraction))
        missing.append(gap_codes.astype(np.int64))
    fractions = np.array([c.fraction for c in combinations])
    completeness = [(p, float(np.mean(fractions >= p - _TOLERANCE))) for p in THRESHOLDS]
    valid_total = sum(c.valid for c in combinations)
    covered_total = sum(c.covered for c in combinations)
    # intp: bincount refuses uint64 rows (no safe cast), and levels are small anyway
    marginals = [np.bincount(matrix[:, c].astype(np.intp), minlength=dims[c]) for c in range(k)]
    return CoverageReport(
        strength=strength, rows=n, valid_tuples=valid_total, covered_tuples=covered_total,
        simple=covered_total / valid_total if valid_total else 1.0,
        combinations=combinations, completeness=completeness,
        full_combinations=completeness[-1][1], minimum=float(fractions.min()),
        levels=dims, invalid_tuples=invalid, _missing=missing, _marginals=marginals,
    )


def pair_matrix(levels: Sequence[int], rows: np.ndarray, *,
                oracle: Oracle | None = None) -> np.ndarray:
    """``k x k`` share of value pairs covered per column pair; the diagonal: single values."""
    dims, matrix = _check(levels, rows)
    k = len(dims)
    result = np.zeros((k, k))
    for t in (1, 2) if k > 1 else (1,):
        report = measure(dims, matrix, t, oracle=oracle)
        for combo in report.combinations:
            a, b = combo.columns[0], combo.columns[-1]
            result[a, b] = result[b, a] = combo.fraction
    return result


def pair_counts(levels: Sequence[int], rows: np.ndarray, a: int, b: int, *,
                failed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Executions per value pair of columns ``a`` x ``b``, and failures when ``failed`` is given."""
    dims, matrix = _check(levels, rows)
    for column in (a, b):
        if not 0 <= column < len(dims):
            raise SpaceError(f"column {column} is not one of the {len(dims)} dimensions")
    codes = matrix[:, a].astype(np.int64) * dims[b] + matrix[:, b].astype(np.int64)
    shape = (dims[a], dims[b])
    counts = np.bincount(codes, minlength=shape[0] * shape[1]).reshape(shape)
    if failed is None:
        return counts, None
    mask = np.asarray(failed)
    if mask.shape != (matrix.shape[0],):
        raise SpaceError(f"failed has shape {mask.shape}, rows have {matrix.shape[0]} rows",
                         expected="one flag per row")
    failures = np.bincount(codes[mask.astype(bool)], minlength=shape[0] * shape[1])
    return counts, failures.reshape(shape)


def _check(levels: Sequence[int], rows: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Validate the model and rows; returns the levels as ints and the rows as a 2-D int array."""
    dims = tuple(int(x) for x in levels)
    if not dims or any(x < 1 for x in dims):
        raise SpaceError(f"levels {list(levels)!r} must be one positive count per dimension")
    matrix = np.asarray(rows)
    if matrix.size == 0:
        matrix = matrix.reshape(0, len(dims))
    if matrix.ndim != 2 or matrix.shape[1] != len(dims):
        raise SpaceError(f"rows have shape {matrix.shape}, the model has {len(dims)} dimensions",
                         expected=f"an (n, {len(dims)}) array of level indices")
    if matrix.dtype == bool:
        matrix = matrix.astype(np.uint8)
    if not np.issubdtype(matrix.dtype, np.integer):
        raise SpaceError(f"rows have dtype {matrix.dtype}", expected="integer level indices")
    if matrix.shape[0]:
        low, high = matrix.min(axis=0), matrix.max(axis=0)
        for column, (lo, hi) in enumerate(zip(low, high)):
            if lo < 0 or hi >= dims[column]:
                raise SpaceError(f"column {column} holds level {lo if lo < 0 else hi}",
                                 expected=f"levels 0..{dims[column] - 1}")
    return dims, matrix


def _code_dtype(space: int) -> type[np.integer]:
    # narrow codes halve or quarter the memory traffic of the adds and of bincount's reads
    for dtype in (np.uint8, np.uint16, np.uint32):
        if space <= np.iinfo(dtype).max + 1:
            return dtype
    return np.int64  # bincount refuses uint64 (no safe cast to its intp)


def _tuple_counts(dims: tuple[int, ...], matrix: np.ndarray, t: int
                  ) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield ``(columns, counts)`` for every t-column combination; counts are per tuple code."""
    k = len(dims)
    largest = math.prod(sorted(dims)[-t:])
    if largest > MAX_TUPLE_SPACE:
        raise SpaceError(f"a {t}-way combination spans {largest} tuples",
                         expected=f"at most {MAX_TUPLE_SPACE}: bin numeric dimensions coarser")
    dtype = _code_dtype(largest)
    columns = [np.ascontiguousarray(matrix[:, c], dtype=dtype) for c in range(k)]
    prefix: list[tuple[int, ...]] = []  # prefix[i]: the columns behind codes[i]
    codes: list[np.ndarray] = []
    for combo in itertools.combinations(range(k), t):
        # keep the longest prefix shared with the last combination, extend it by Horner's rule
        keep = 0
        while keep < len(prefix) and keep < t - 1 and prefix[keep] == combo[: keep + 1]:
            keep += 1
        del prefix[keep:], codes[keep:]
        for depth in range(keep, t):
            head = combo[: depth + 1]
            if depth == 0:
                code = columns[combo[0]]
            else:
                code = codes[-1] * dtype(dims[combo[depth]])
                code += columns[combo[depth]]
            prefix.append(head)
            codes.append(code)
        space = math.prod(dims[c] for c in combo)
        yield combo, np.bincount(codes[-1], minlength=space)
        # the full-length code is never a prefix of the next combination
        prefix.pop()
        codes.pop()


class _ValidityCache:
    """Asks the oracle about each tuple once, skipping tuples holding a level it rejects."""

    def __init__(self, oracle: Oracle, dims: tuple[int, ...]) -> None:
        self._oracle = oracle
        self._dims = dims
        self._answers: dict[tuple[tuple[int, int], ...], bool] = {}
        self._single = [np.array([self._ask(((c, v),)) for v in range(n)], dtype=bool)
                        for c, n in enumerate(dims)]

    def _ask(self, items: tuple[tuple[int, int], ...]) -> bool:
        answer = self._answers.get(items)
        if answer is None:
            answer = bool(self._oracle.consistent(dict(items)))
            self._answers[items] = answer
        return answer

    def valid_mask(self, columns: tuple[int, ...]) -> np.ndarray:
        """Boolean validity per tuple code of ``columns`` (C order, as the codes)."""
        shape = tuple(self._dims[c] for c in columns)
        if len(columns) == 1:
            return self._single[columns[0]].copy()
        # the outer product of single-level validity prunes before any oracle call
        mask = np.ones(shape, dtype=bool)
        for axis, column in enumerate(columns):
            view = [1] * len(columns)
            view[axis] = shape[axis]
            mask &= self._single[column].reshape(view)
        flat = mask.reshape(-1)
        for code in np.flatnonzero(flat):
            digits = np.unravel_index(code, shape)
            flat[code] = self._ask(tuple((c, int(v)) for c, v in zip(columns, digits)))
        return flat
