"""Dimensions built from other dimensions: orders, optional values, lists, objects and unions.

Objects nested directly in a space are flattened into dotted parameters (``db.pool.size``) so
that constraints, covering arrays and coverage see every leaf; an object inside a list is one
value (a dict) of that list's items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from testfleet.errors import SpaceError
from testfleet.space.dimensions import Dimension, Level
from testfleet.space.expressions import MISSING


def _column(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class Permutation(Dimension):
    """An order of the given items; its classes are which item comes first."""

    kind = "permutation"

    def __init__(self, items: list[Any] | tuple[Any, ...], *, default: list[Any] | None = None
                 ) -> None:
        if not isinstance(items, (list, tuple)) or not items:
            raise SpaceError(f"permutation needs a non-empty list of items, not {items!r}",
                             expected="a list such as [\"create\", \"update\", \"delete\"]")
        self.items = list(items)
        self.default = list(default) if default is not None else None
        self._check_default()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        orders = np.argsort(rng.random((n, len(self.items))), axis=1)
        return _column([[self.items[i] for i in row] for row in orders])

    def contains(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.items):
            return False
        remaining = list(self.items)
        for item in value:
            if item not in remaining:
                return False
            remaining.remove(item)
        return True

    def cardinality(self) -> int:
        import math
        return math.factorial(len(self.items))

    def baseline(self) -> Any:
        return self.default if self.default is not None else list(self.items)

    def levels(self) -> list[Level]:
        k = len(self.items)
        return [Level(f"{self.items[i]} first", self.items[i:] + self.items[:i]) for i in range(k)]

    def level_of(self, value: Any) -> int:
        return self.items.index(value[0]) if self.contains(value) else -1

    def edges(self) -> list[tuple[str, Any]]:
        found = [("as declared", list(self.items))]
        if len(self.items) > 1:
            found.append(("reversed", list(reversed(self.items))))
        return found

    def to_dict(self) -> dict[str, Any]:
        return self._with_default({"type": self.kind, "items": list(self.items)})


class Optional(Dimension):
    """A value of ``inner`` or nothing: ``None`` (null) or, with ``absent=True``, a missing key."""

    kind = "optional"

    def __init__(self, inner: Dimension, *, absent: bool = False, weight: float = 0.2,
                 default: Any = None) -> None:
        if not isinstance(inner, Dimension):
            raise SpaceError(f"optional wraps a dimension, not {inner!r}", expected="a dimension")
        if not 0.0 <= weight <= 1.0:
            raise SpaceError(f"optional weight {weight!r} outside [0, 1]",
                             expected="the share of points without a value")
        self.inner, self.absent, self.weight = inner, absent, weight
        self.none: Any = MISSING if absent else None
        self.default = default

    def baseline(self) -> Any:
        return self.default if self.default is not None else self.inner.baseline()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        empty = rng.random(n) < self.weight
        values = self.inner.sample(rng, n).tolist()
        return _column([self.none if e else v for e, v in zip(empty, values, strict=True)])

    def contains(self, value: Any) -> bool:
        return value is self.none or self.inner.contains(value)

    def cardinality(self) -> int | None:
        inner = self.inner.cardinality()
        return None if inner is None else inner + 1

    def levels(self) -> list[Level]:
        return [Level("absent" if self.absent else "null", self.none), *self.inner.levels()]

    def level_of(self, value: Any) -> int:
        if value is self.none:
            return 0
        inner = self.inner.level_of(value)
        return -1 if inner < 0 else inner + 1

    def edges(self) -> list[tuple[str, Any]]:
        return [("absent" if self.absent else "null", self.none), *self.inner.edges()]

    def render(self, value: Any) -> Any:
        return value if value is self.none else self.inner.render(value)

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.kind, "of": self.inner.to_dict()}
        if self.absent:
            spec["absent"] = True
        if self.weight != 0.2:
            spec["weight"] = self.weight
        return self._with_default(spec)


class ListOf(Dimension):
    """A list of ``min_items..max_items`` values of ``item``; its classes are length classes."""

    kind = "list"

    def __init__(self, item: Dimension, min_items: int = 0, max_items: int = 5, *,
                 default: list[Any] | None = None) -> None:
        if not isinstance(item, Dimension):
            raise SpaceError(f"list items need a dimension, not {item!r}", expected="a dimension")
        if not isinstance(min_items, int) or not isinstance(max_items, int) \
                or not 0 <= min_items <= max_items:
            raise SpaceError(f"bad list lengths min_items={min_items!r} max_items={max_items!r}",
                             expected="0 <= min_items <= max_items")
        self.item, self.min_items, self.max_items = item, min_items, max_items
        self.default = default
        self._check_default()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lengths = rng.integers(self.min_items, self.max_items + 1, size=n)
        flat = self.item.sample(rng, int(lengths.sum())).tolist()
        out, start = [], 0
        for length in lengths:
            out.append(flat[start:start + length])
            start += length
        return _column(out)

    def contains(self, value: Any) -> bool:
        return isinstance(value, list) and self.min_items <= len(value) <= self.max_items \
            and all(self.item.contains(v) for v in value)

    def _lengths(self) -> list[tuple[str, int]]:
        found = [("shortest" if self.min_items else "empty", self.min_items)]
        if self.max_items - self.min_items >= 2:
            found.append(("some", (self.min_items + self.max_items) // 2))
        if self.max_items > self.min_items:
            found.append(("longest", self.max_items))
        return found

    def levels(self) -> list[Level]:
        base = self.item.baseline()
        return [Level(label, [base] * length) for label, length in self._lengths()]

    def level_of(self, value: Any) -> int:
        if not self.contains(value):
            return -1
        lengths = self._lengths()
        if len(value) == lengths[0][1]:
            return 0
        if len(value) == self.max_items:
            return len(lengths) - 1
        return 1

    def edges(self) -> list[tuple[str, Any]]:
        found = [(level.label, level.value) for level in self.levels()]
        if self.max_items:
            found += [(f"longest of {label}", [value] * self.max_items)
                      for label, value in self.item.edges()[:3]]
        return found

    def to_dict(self) -> dict[str, Any]:
        return self._with_default({"type": self.kind, "of": self.item.to_dict(),
                                   "min_items": self.min_items, "max_items": self.max_items})


class Object(Dimension):
    """Named fields. In a space it is flattened into dotted parameters; in a list it is a dict."""

    kind = "object"

    def __init__(self, fields: dict[str, Dimension] | None = None, **more: Dimension) -> None:
        self.fields = dict(fields or {}) | more
        for name, dim in self.fields.items():
            if not isinstance(dim, Dimension):
                raise SpaceError(f"object field {name!r} is {dim!r}", expected="a dimension")

    def baseline(self) -> Any:
        return _drop_missing({k: d.baseline() for k, d in self.fields.items()})

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        columns = {k: d.sample(rng, n).tolist() for k, d in self.fields.items()}
        return _column([_drop_missing({k: columns[k][i] for k in self.fields})
                        for i in range(n)])

    def contains(self, value: Any) -> bool:
        if not isinstance(value, dict) or set(value) - set(self.fields):
            return False
        return all(d.contains(value.get(k, MISSING)) for k, d in self.fields.items())

    def levels(self) -> list[Level]:
        return [Level("object", self.baseline())]

    def level_of(self, value: Any) -> int:
        return 0 if self.contains(value) else -1

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "fields": {k: d.to_dict() for k, d in self.fields.items()}}


class Union(Dimension):
    """A value of any of several dimensions (JSON Schema ``anyOf`` / ``oneOf`` / type lists)."""

    kind = "union"

    def __init__(self, branches: list[Dimension], *, default: Any = None) -> None:
        if not branches or not all(isinstance(b, Dimension) for b in branches):
            raise SpaceError(f"union needs a list of dimensions, not {branches!r}",
                             expected="at least one dimension")
        self.branches = list(branches)
        self.default = default

    def baseline(self) -> Any:
        return self.default if self.default is not None else self.branches[0].baseline()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        picks = rng.integers(0, len(self.branches), size=n)
        drawn = [b.sample(rng, n).tolist() for b in self.branches]
        return _column([drawn[p][i] for i, p in enumerate(picks)])

    def contains(self, value: Any) -> bool:
        return any(b.contains(value) for b in self.branches)

    def levels(self) -> list[Level]:
        return [Level(f"{b.kind}:{level.label}", level.value)
                for b in self.branches for level in b.levels()]

    def level_of(self, value: Any) -> int:
        offset = 0
        for branch in self.branches:
            inner = branch.level_of(value)
            if inner >= 0:
                return offset + inner
            offset += len(branch.levels())
        return -1

    def edges(self) -> list[tuple[str, Any]]:
        return [(f"{b.kind}:{label}", v) for b in self.branches for label, v in b.edges()]

    def to_dict(self) -> dict[str, Any]:
        return self._with_default({"type": self.kind,
                                   "of": [b.to_dict() for b in self.branches]})


def _drop_missing(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not MISSING}
