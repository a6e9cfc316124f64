"""The table failure analysis works on: one row per execution, numpy columns.

``AnalysisFrame`` holds, per execution, whether it failed, each parameter as a column
(categorical as integer codes with labels, numeric as float64 with NaN for "not set"), and the
numeric outcomes (duration, telemetry metrics). Parameters come from the variants (config
parameters, explored inputs) and from the environment (worker, run, host, Python, OS); the
statistics never care which, but reports say so through ``Column.source``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CATEGORICAL, NUMERIC = "categorical", "numeric"
#: Numeric parameters with at most this many distinct values are also treated as categories.
FEW_VALUES = 12


@dataclass
class Column:
    name: str
    kind: str                   # CATEGORICAL | NUMERIC
    values: np.ndarray          # categorical: int64 codes, -1 missing; numeric: float64, NaN missing
    labels: list[Any] | None = None   # categorical: the value of each code
    source: str = "param"       # "param" | "env"

    def label(self, code: int) -> Any:
        return self.labels[code] if self.labels is not None and code >= 0 else None

    @property
    def ordered(self) -> bool:
        """Numeric, or categorical whose every value is a number: its values have an order,
        so a rule about it is a threshold or a range (``threads>8``), not one rule a value."""
        return self.kind == NUMERIC or bool(self.labels) and all(
            _is_number(v) for v in self.labels or [])

    def numbers(self) -> np.ndarray:
        """The column as float64 per execution (NaN: unset); only for ``ordered`` columns."""
        if self.kind == NUMERIC:
            return self.values
        lookup = np.append(np.array([float(v) for v in self.labels or []]), np.nan)
        return lookup[np.where(self.values >= 0, self.values, lookup.size - 1)]


@dataclass
class AnalysisFrame:
    failed: np.ndarray                                   # bool per execution
    columns: list[Column]
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)   # float64 per execution
    variant_ids: np.ndarray | None = None                # object per execution
    params: list[Mapping[str, Any]] | None = None        # parameters per execution (for --next)
    origins: np.ndarray | None = None                    # object per execution: the variant's source

    def subset(self, mask: np.ndarray) -> AnalysisFrame:
        """The executions where ``mask`` holds (categorical codes keep their labels)."""
        columns = [Column(c.name, c.kind, c.values[mask], c.labels, c.source)
                   for c in self.columns]
        take = np.flatnonzero(mask)
        return AnalysisFrame(
            self.failed[mask], columns, {k: v[mask] for k, v in self.outcomes.items()},
            None if self.variant_ids is None else self.variant_ids[mask],
            None if self.params is None else [self.params[i] for i in take],
            None if self.origins is None else self.origins[mask])

    def __len__(self) -> int:
        return len(self.failed)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def categorical(name: str, values: Sequence[Any] | np.ndarray, source: str = "param") -> Column:
    """Codes and labels for any hashable values; None (and MISSING) become -1."""
    array = np.asarray(values, dtype=object)
    missing = np.array([v is None or type(v).__name__ == "_Missing" for v in array], dtype=bool)
    keys = np.array([repr(v) if not isinstance(v, str) else v for v in array], dtype=object)
    keys[missing] = ""
    uniques, codes = np.unique(keys.astype(str), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    first = {}
    for i, key in enumerate(keys):
        if not missing[i] and key not in first:
            first[key] = array[i]
    labels = [first.get(u) for u in uniques]
    codes[missing] = -1
    # drop the code of the missing marker if it took one
    if missing.any() and "" in uniques and "" not in first:
        empty = int(np.flatnonzero(uniques == "")[0])
        codes = np.where(codes > empty, codes - 1, codes)
        labels.pop(empty)
    # natural order for reports: numbers by value (2 before 16), then text
    order = sorted(range(len(labels)), key=lambda i: _natural(labels[i]))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1) if len(labels) else codes
    return Column(name, CATEGORICAL, codes, [labels[i] for i in order], source)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _natural(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def numeric(name: str, values: Sequence[Any] | np.ndarray, source: str = "param") -> Column:
    array = np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
                      for v in values], dtype=float) if not isinstance(values, np.ndarray) \
        or values.dtype == object else values.astype(float)
    return Column(name, NUMERIC, array, None, source)


def infer_column(name: str, values: Sequence[Any], source: str = "param") -> Column:
    """Numeric when every set value is a number (not a bool) with more than FEW_VALUES
    distinct values; categorical otherwise."""
    present = [v for v in values if v is not None and type(v).__name__ != "_Missing"]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if present and numbers and len(set(present)) > FEW_VALUES:
        return numeric(name, values, source)
    return categorical(name, values, source)
