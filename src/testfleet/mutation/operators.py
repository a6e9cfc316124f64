"""Mutation operators: the values a rule proposes for one parameter, given its current value.

:func:`propose` is the one entry point. Each variation type is a generator of candidates in
order of preference; ``propose`` keeps the first ``count`` that are inside the dimension (when
one is known), differ from the current value and from each other. Every random choice comes
from the ``rng`` given, so a seed reproduces the proposals exactly.

========  ===================================================================================
range     ``min_value..max_value`` by ``step_size``, nearest to the current value first
set       the rule's ``values``, in an order drawn from ``rng``
scale     current x factor, current / factor, then x factor², / factor², ... (within bounds)
jitter    current ± up to ``amount`` (absolute, or a percentage of the current value)
shuffle   permutations of a list value (an order of operations), different from the current
boundary  the dimension's edges, the rule's bounds and just inside/outside them, then the
          special values of the type: -1, 0, 2^31 +- 1, 2^63 - 1; sizes 2^k +- 1; empty,
          combining mark, NUL, right-to-left, control characters, the longest text
grow      numbers, strings and lists multiplied by ``factor`` (lists extended with new items)
drop      the parameter removed (:data:`MISSING`) or null, or one list element / key removed
========  ===================================================================================

Numbers follow the dimension: integers for Int and Size (snapped to the grid), floats for
Float and Duration; scale, jitter and grow clamp to the rule's and the dimension's bounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from testfleet.mutation.rules import Rule
from testfleet.plugins import hookimpl
from testfleet.space.composite import ListOf, Optional, Permutation
from testfleet.space.dimensions import (
    SPECIAL_FLOATS,
    SPECIAL_INTS,
    SPECIAL_SECONDS,
    SPECIAL_SIZES,
    Dimension,
    Duration,
    Float,
    Int,
    Size,
    parse_duration,
    parse_size,
)
from testfleet.space.expressions import MISSING
from testfleet.space.text import LONE_SURROGATE, SPECIAL_TEXTS, String

__all__ = ["MISSING", "OperatorContext", "propose"]

#: Candidates looked at per call at most (filters may reject many of a range's values).
MAX_ATTEMPTS = 2000


def propose(rule: Rule, dimension: Dimension | None, current: Any, rng: np.random.Generator,
            count: int = 8) -> list[Any]:
    """Up to ``count`` distinct values for ``rule.target_parameter``, none equal to ``current``
    and, when ``dimension`` is given, all inside it. Deterministic for a given ``rng`` state."""
    if count <= 0:
        return []
    ctx = _Context(rule, dimension, current, rng)
    out: list[Any] = []
    seen = {_key(_native(current))}
    from testfleet.plugins import registry  # plugins' operators too (variation types by name)

    for attempt, candidate in enumerate(registry().operators()[rule.variation_type](ctx)):
        if attempt >= MAX_ATTEMPTS:
            break
        value = _native(candidate)
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if dimension is not None and not _inside(dimension, value):
            continue
        key = _key(value)
        if key in seen:
            continue
        seen.add(key)
        out.append(value)
        if len(out) >= count:
            break
    return out


# ---------------------------------------------------------------- helpers

def _native(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value == 0.0:
        return 0.0  # -0.0 is the same value
    return value


def _key(value: Any) -> tuple[Any, ...]:
    if value is MISSING:
        return ("missing",)
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # 1 and 1.0 are one value
    if isinstance(value, str):
        return ("str", value)
    try:
        return ("json", json.dumps(value, sort_keys=True, default=repr))
    except (TypeError, ValueError):
        return ("repr", repr(value))


def _inside(dimension: Dimension, value: Any) -> bool:
    try:
        return bool(dimension.contains(value))
    except Exception:  # noqa: BLE001 - a value the dimension cannot judge is not inside it
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)) and math.isfinite(float(value))


class _Context:
    """What every generator needs: the rule, the numeric view of the dimension, the rng."""

    def __init__(self, rule: Rule, dimension: Dimension | None, current: Any,
                 rng: np.random.Generator) -> None:
        self.rule, self.dimension, self.current, self.rng = rule, dimension, current, rng
        inner = dimension.inner if isinstance(dimension, Optional) else dimension
        self.inner = inner
        self.numeric = inner if isinstance(inner, (Int, Float)) else None
        if isinstance(inner, Int):
            self.integral = True
        elif isinstance(inner, Float):
            self.integral = False
        else:
            bounds = [rule.min_value, rule.max_value, rule.step_size]
            self.integral = (isinstance(current, (int, np.integer)) or current is None
                             or current is MISSING) and not isinstance(current, bool) and all(
                b is None or isinstance(b, int) for b in bounds)
        self.lo = max((b for b in (rule.min_value, getattr(self.numeric, "min", None))
                       if b is not None), default=None)
        self.hi = min((b for b in (rule.max_value, getattr(self.numeric, "max", None))
                       if b is not None), default=None)

    def base(self) -> float | int | None:
        """The current value as a number, else the dimension's baseline when numeric."""
        if _is_number(self.current):
            number: float | int = _native(self.current)  # numpy's numbers as Python's
            return number
        if self.numeric is not None:
            baseline: float | int = self.numeric.baseline()  # a value of an Int or a Float
            return baseline
        return None

    def fit(self, x: float, clamp: bool = True) -> float | int:
        """``x`` as the dimension's kind of number: clamped, snapped to its grid, rounded."""
        if clamp:
            if self.lo is not None and self.hi is not None and self.lo > self.hi:
                return x  # the rule and the dimension do not overlap: the filter decides
            if self.lo is not None:
                x = max(x, self.lo)
            if self.hi is not None:
                x = min(x, self.hi)
        step = getattr(self.numeric, "step", None)
        if step and self.numeric is not None:
            x = self.numeric.min + round((x - self.numeric.min) / step) * step
        if self.integral:
            return round(x) if abs(x) < 2**63 else x
        return float(f"{float(x):.12g}")

    def coerce(self, value: Any) -> Any:
        """A set value written with units (``64MB``, ``250ms``) for a size or duration."""
        if isinstance(value, str):
            try:
                if isinstance(self.inner, Size):
                    return parse_size(value)
                if isinstance(self.inner, Duration):
                    return parse_duration(value)
            except Exception:  # noqa: BLE001 - left as written; the filter decides
                return value
        return value


# ---------------------------------------------------------------- generators

def _range(ctx: _Context) -> Iterator[Any]:
    rule = ctx.rule
    lo, hi, step = rule.min_value, rule.max_value, rule.step_size
    if lo is None or hi is None or not step:
        return
    n = math.floor((hi - lo) / step + 1e-9) + 1
    base = ctx.base()
    k0 = 0 if base is None else min(max(round((base - lo) / step), 0), n - 1)
    # a triggered rule is a hint that the far side of the range matters: its far end and the
    # point halfway to it come first, then the near end, then every value nearest-first
    far, near = (n - 1, 0) if k0 <= (n - 1) - k0 else (0, n - 1)
    first = [far, (k0 + far) // 2, near]
    nearest = [k for d in range(n) for k in ((k0 + d, k0 - d) if d else (k0,))]
    for k in dict.fromkeys(first + nearest):
        if 0 <= k < n:
            value = lo + k * step
            if isinstance(value, float) and ctx.integral and value.is_integer():
                value = int(value)
            elif isinstance(value, float) or isinstance(ctx.numeric, Float):
                value = float(f"{value:.12g}")
            yield value


def _set(ctx: _Context) -> Iterator[Any]:
    values = list(ctx.rule.values or ())
    for i in ctx.rng.permutation(len(values)):
        yield ctx.coerce(values[int(i)])


def _scale(ctx: _Context) -> Iterator[Any]:
    base, factor = ctx.base(), ctx.rule.factor or 2.0
    if base is None:
        return
    for k in range(1, 64):
        for x in (base * factor**k, base / factor**k):
            if math.isfinite(x):
                yield ctx.fit(x)


def _jitter(ctx: _Context) -> Iterator[Any]:
    base, rule = ctx.base(), ctx.rule
    if base is None or rule.amount is None:
        return
    amount = abs(base) * rule.amount / 100 if rule.relative_amount else rule.amount
    if amount <= 0 or not math.isfinite(amount):
        return
    for _ in range(64):
        for offset in ctx.rng.uniform(-amount, amount, size=8):
            yield ctx.fit(base + float(offset))


def _list_base(ctx: _Context) -> list[Any] | None:
    if isinstance(ctx.current, (list, tuple)):
        return list(ctx.current)
    if isinstance(ctx.inner, (Permutation, ListOf)):
        return list(ctx.inner.baseline() or [])
    return None


def _shuffle(ctx: _Context) -> Iterator[Any]:
    items = _list_base(ctx)
    if not items or len(items) < 2:
        return
    if not isinstance(ctx.current, (list, tuple)):
        yield list(items)  # the declared order is itself a proposal
    for _ in range(200):
        yield [items[int(i)] for i in ctx.rng.permutation(len(items))]


def _boundary(ctx: _Context) -> Iterator[Any]:
    if ctx.dimension is not None:
        yield from (value for _label, value in ctx.dimension.edges())
    rule = ctx.rule
    step = rule.step_size or getattr(ctx.numeric, "step", None) or (1 if ctx.integral else None)
    for bound, inward in ((rule.min_value, 1), (rule.max_value, -1)):
        if bound is None:
            continue
        yield bound
        for sign in (inward, -inward):  # just inside, then just outside
            if step:
                yield ctx.fit(bound + sign * step, clamp=False)
            elif isinstance(bound, float):
                yield math.nextafter(bound, math.inf * sign)
    # then the special values of the current value's type (the filter keeps those inside)
    current = ctx.current
    if isinstance(current, bool):
        yield not current
    elif isinstance(current, (int, np.integer)):
        yield from (value for _label, value in SPECIAL_INTS)
        if isinstance(ctx.inner, Size):
            yield from (value for _label, value in SPECIAL_SIZES)
    elif isinstance(current, (float, np.floating)):
        yield from (value for _label, value in SPECIAL_FLOATS)
        if isinstance(ctx.inner, Duration):
            yield from (value for _label, value in SPECIAL_SECONDS)
        yield from (1e-9, 1e308, -1e308)
    elif isinstance(current, str):
        yield from ("", " ")
        yield from (text for _label, text in SPECIAL_TEXTS)
        if isinstance(ctx.inner, String) and (ctx.inner.charset or ctx.inner.pattern):
            yield LONE_SURROGATE[1]  # only where the declaration names one (see text.py)
        yield current * 64 if current else "x" * 1024
    elif isinstance(current, (list, tuple)):
        yield []
        if current:
            yield list(current) * 16


def _target_length(length: int, factor: float, k: int) -> int:
    target = round(length * factor**k)
    if target == length:
        target = length + 1 if factor > 1 else length - 1
    return max(target, 0)


def _grow(ctx: _Context) -> Iterator[Any]:
    factor, current = ctx.rule.factor or 2.0, ctx.current
    base = ctx.base()
    if base is not None and not isinstance(current, (str, list, tuple, dict)):
        for k in range(1, 64):
            x = base * factor**k
            if math.isfinite(x):
                yield ctx.fit(x)
        return
    if isinstance(current, str) and current:
        for k in range(1, 8):
            target = _target_length(len(current), factor, k)
            yield (current * (target // len(current) + 1))[:target]
        return
    items = _list_base(ctx)
    if items is None:
        return
    for k in range(1, 8):
        target = _target_length(len(items), factor, k)
        if target <= len(items):
            yield items[:target]
        elif isinstance(ctx.inner, ListOf):
            yield items + ctx.inner.item.sample(ctx.rng, target - len(items)).tolist()
        elif items:
            yield [items[i % len(items)] for i in range(target)]


def _drop(ctx: _Context) -> Iterator[Any]:
    current = ctx.current
    if current is MISSING:
        return
    yield MISSING
    if ctx.dimension is not None:
        yield None  # an optional parameter that is null rather than absent
    if isinstance(current, (list, tuple)) and current:
        for i in ctx.rng.permutation(len(current)):
            yield [v for j, v in enumerate(current) if j != int(i)]
    elif isinstance(current, dict) and current:
        keys = list(current)
        for i in ctx.rng.permutation(len(keys)):
            yield {k: v for k, v in current.items() if k != keys[int(i)]}


_GENERATORS: dict[str, Callable[[_Context], Iterator[Any]]] = {
    "range": _range, "set": _set, "scale": _scale, "jitter": _jitter, "shuffle": _shuffle,
    "boundary": _boundary, "grow": _grow, "drop": _drop,
}

#: What an operator (built-in or a plugin's) is called with.
OperatorContext = _Context


@hookimpl
def testfleet_add_mutation_operators() -> dict[str, Callable[[_Context], Iterator[Any]]]:
    return dict(_GENERATORS)
