"""Evaluating a parsed expression tree over numpy columns: one call for a batch of points.

:meth:`testfleet.space.expressions.Expression.evaluate_columns` calls :func:`eval_columns` and
falls back to the exact per-point evaluation when it raises :class:`NotVectorisable` (``in``,
null constants, division by zero, int64 overflow, booleans in arithmetic) or numpy refuses.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

from testfleet.space.expressions import ARITH, COMPARE


class NotVectorisable(Exception):
    """The tree (or these columns) need the per-point evaluation."""


def eval_columns(tree: tuple[Any, ...], cols: Mapping[str, np.ndarray]) -> Any:
    kind = tree[0]
    if kind == "const":
        if tree[1] is None:
            raise NotVectorisable
        return tree[1]
    if kind == "name":
        # object columns (strings, nulls) work elementwise with Python's own operators; where
        # they can't (None > 3), numpy raises TypeError and the caller falls back per point
        return cols[tree[1]]
    if kind in ("and", "or"):
        terms = [np.asarray(eval_columns(term, cols)).astype(bool) for term in tree[1:]]
        return functools.reduce(operator.and_ if kind == "and" else operator.or_, terms)
    if kind == "implies":
        left = np.asarray(eval_columns(tree[1], cols)).astype(bool)
        right = np.asarray(eval_columns(tree[2], cols)).astype(bool)
        return ~left | right
    if kind == "not":
        return ~np.asarray(eval_columns(tree[1], cols)).astype(bool)
    if kind == "compare":
        if any(op in ("in", "not in") for op in tree[1]):
            raise NotVectorisable
        values = [eval_columns(t, cols) for t in tree[2]]
        result: Any = True
        for i, op in enumerate(tree[1]):
            result = result & COMPARE[op](values[i], values[i + 1])
        return result
    if kind == "arith":
        left, right = eval_columns(tree[2], cols), eval_columns(tree[3], cols)
        kinds = {np.asarray(left).dtype.kind, np.asarray(right).dtype.kind}
        if "b" in kinds:
            raise NotVectorisable  # numpy adds booleans like `or`; Python counts them
        if tree[1] in ("/", "//", "%") and np.any(np.asarray(right) == 0):
            raise NotVectorisable  # per point, division by zero makes the expression undefined
        result = ARITH[tree[1]](left, right)
        if kinds <= {"i", "u"} and tree[1] in ("+", "-", "*"):
            wide = ARITH[tree[1]](np.asarray(left, dtype=float), np.asarray(right, dtype=float))
            if np.any(np.abs(wide) >= 2.0**62):
                raise NotVectorisable  # int64 would wrap; Python integers do not
        return result
    if kind == "neg":
        operand = eval_columns(tree[1], cols)
        if np.asarray(operand).dtype.kind == "b":
            raise NotVectorisable
        return -operand
    raise NotVectorisable
