"""Dimensions of a parameter space: what values a parameter may take, how to draw them, their
boundary values, and the finite *levels* (equivalence classes) that covering arrays and coverage
measurement work on.

Every dimension answers the same questions:

- ``sample(rng, n)``: n values drawn uniformly from the dimension (one numpy call, not n);
- ``contains(value)``: membership, exactly;
- ``levels()``: a few classes, each with a representative value. Numbers get their two bounds as
  classes of their own plus equal-width interior bins (log-width for sizes and durations), so
  a pairwise array always pairs every bound with every other parameter's classes;
- ``level_of_many(values)``: the class of each value (binning, for coverage);
- ``edges()``: boundary values (min, max, just inside, zero, empty, null...), each labelled,
  then the special values the dimension holds (-1, 2^31 +- 1, 2^63 - 1; sizes 2^16 +- 1...);
- ``to_dict()``: the declaration, the inverse of :func:`testfleet.space.declare.dimension`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from testfleet.errors import SpaceError
from testfleet.space.expressions import DURATION_UNITS, SIZE_UNITS

#: Discrete dimensions with at most this many values get one level per value.
EXACT_LEVELS = 6
#: Interior bins between the two bounds of a larger numeric range.
INTERIOR_BINS = 3
#: Integers where programs misjudge sign or overflow 32- and 64-bit types, with their labels.
#: ``edges()`` offers those a dimension holds (its range and grid), after its own bounds.
SPECIAL_INTS: tuple[tuple[str, int], ...] = (
    ("-1", -1), ("zero", 0), ("one", 1),
    ("2^31-1", 2**31 - 1), ("2^31", 2**31), ("2^31+1", 2**31 + 1),
    ("-2^31", -(2**31)), ("-2^31-1", -(2**31) - 1), ("2^32-1", 2**32 - 1), ("2^32", 2**32),
    ("2^63-1", 2**63 - 1), ("-2^63", -(2**63)), ("2^63", 2**63),
)
#: Byte counts where buffers and length fields overflow: powers of two +-1.
SPECIAL_SIZES: tuple[tuple[str, int], ...] = tuple(
    (f"2^{k}{suffix}", 2**k + d) for k in (8, 16, 24) for suffix, d in (("-1", -1), ("", 0), ("+1", 1)))
#: Seconds where timers misbehave: none, one, and 2^31 / 2^32 milliseconds.
SPECIAL_SECONDS: tuple[tuple[str, float], ...] = (
    ("zero", 0.0), ("1s", 1.0), ("2^31-1 ms", (2**31 - 1) / 1000), ("2^31 ms", 2**31 / 1000),
    ("2^32 ms", 2**32 / 1000))
#: Reals where programs misjudge sign, integer conversion or float precision.
SPECIAL_FLOATS: tuple[tuple[str, float], ...] = (
    ("-1", -1.0), ("zero", 0.0), ("2^31-1", float(2**31 - 1)), ("2^31", float(2**31)),
    ("2^31+1", float(2**31 + 1)), ("2^32", float(2**32)), ("2^53", float(2**53)),
    ("2^63", float(2**63)))


@dataclass(frozen=True)
class Level:
    """One class of a dimension's values and the value that stands for it."""

    label: str
    value: Any


class Dimension(ABC):
    """A typed parameter. Subclasses hold only their declaration; all methods are pure."""

    kind: str = ""
    default: Any = None

    def baseline(self) -> Any:
        """The value used when this parameter is not the one being varied."""
        return self.default if self.default is not None else self.levels()[0].value

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    @abstractmethod
    def contains(self, value: Any) -> bool: ...

    @abstractmethod
    def levels(self) -> list[Level]: ...

    @abstractmethod
    def level_of(self, value: Any) -> int:
        """Index of the level (class) the value belongs to; -1 when outside the dimension."""

    def level_of_many(self, values: Any) -> np.ndarray:
        return np.fromiter((self.level_of(v) for v in values), dtype=np.int64, count=len(values))

    def edges(self) -> list[tuple[str, Any]]:
        return [(level.label, level.value) for level in self.levels()]

    def cardinality(self) -> int | None:
        """Number of distinct values, or None when uncountable (floats, unbounded strings)."""
        return None

    def render(self, value: Any) -> Any:
        """The value as a configuration file writes it (sizes as ``64MB`` when declared so)."""
        return value

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def _with_default(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.default is not None:
            spec["default"] = self.default
        return spec

    def _check_default(self) -> None:
        if self.default is not None and not self.contains(self.default):
            raise SpaceError(f"default {self.default!r} is not a value of {self!r}",
                             expected="a default inside the dimension")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))


def _bins_edges(lo: float, hi: float, bins: int, log: bool) -> np.ndarray:
    """Interior bin boundaries strictly between lo and hi (bins + 1 points, lo and hi included)."""
    floor = lo if lo > 0 else min(1.0, hi * 1e-6)  # a log scale needs a positive start
    if log and lo >= 0 and hi > floor > 0:
        edges = np.geomspace(floor, hi, bins + 1)
        edges[0] = lo
        return edges
    return np.linspace(lo, hi, bins + 1)


def _bin_middle(a: float, b: float, log: bool) -> float:
    return math.sqrt(a * b) if log and a > 0 else (a + b) / 2


class Int(Dimension):
    """Integers ``min, min + step, ... <= max``."""

    kind = "int"
    log_bins = False

    def __init__(self, min: int, max: int, step: int = 1, *, default: int | None = None) -> None:
        for label, value in (("min", min), ("max", max), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SpaceError(f"{self.kind} {label} must be an integer, not {value!r}",
                                 expected="an integer")
        if step <= 0 or min > max:
            raise SpaceError(f"empty {self.kind} range min={min} max={max} step={step}",
                             expected="min <= max and step > 0")
        self.min, self.step = int(min), int(step)
        self.count = (int(max) - self.min) // self.step + 1
        self.max = self.min + (self.count - 1) * self.step  # the last value on the grid
        self.default = default
        self._check_default()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.count < 2**62 and abs(self.min) < 2**62 and abs(self.max) < 2**62:
            return self.min + rng.integers(0, self.count, size=n, dtype=np.int64) * self.step
        ks = [int(self.count * u) for u in rng.random(n)]  # ranges past int64: exact Python ints
        return np.array([self.min + k * self.step for k in ks], dtype=object)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return bool(self.min <= value <= self.max and (value - self.min) % self.step == 0)

    def cardinality(self) -> int:
        return self.count

    def _interior(self) -> list[int]:
        """Bin edges as exact integers: min, e1, e2, max. A value v in (min, max) is in
        interior bin i (1-based) when e[i-1] < v <= e[i]. Log-width bins (sizes) fall back to
        equal widths when a bin would hold no value of the grid."""
        span = self.max - self.min
        linear = [self.min + span * i // INTERIOR_BINS for i in range(INTERIOR_BINS + 1)]
        if not self.log_bins:
            return linear
        floats = _bins_edges(float(self.min), float(self.max), INTERIOR_BINS, True)
        edges = [self.min, *(int(e) for e in floats[1:-1]), self.max]
        return edges if all(self._inside(edges, i) is not None for i in range(INTERIOR_BINS)) \
            else linear

    def _inside(self, edges: list[int], i: int) -> int | None:
        """The grid value nearest the middle of interior bin i (0-based) that lies in it."""
        lo, hi = edges[i], edges[i + 1]
        first_k = (lo - self.min) // self.step + 1          # smallest k with value > lo
        last_k = min((hi - self.min) // self.step, self.count - 2)  # value <= hi, below max
        first_k = max(first_k, 1)
        if first_k > last_k:
            return None
        target = _bin_middle(float(lo), float(hi), self.log_bins)
        k = round((target - self.min) / self.step) if abs(target) < 2**52 else (first_k + last_k) // 2
        return self.min + max(first_k, min(last_k, k)) * self.step

    def levels(self) -> list[Level]:
        if self.count <= EXACT_LEVELS:
            return [Level(self._label(self.min + k * self.step), self.min + k * self.step)
                    for k in range(self.count)]
        edges = self._interior()
        mids = []
        for i in range(INTERIOR_BINS):
            mid = self._inside(edges, i)
            assert mid is not None  # _interior's edges leave a grid value in every bin
            mids.append(mid)
        values = [self.min, *mids, self.max]
        labels = ["min", *(f"~{self._label(m)}" for m in mids), "max"]
        return [Level(label, value) for label, value in zip(labels, values, strict=True)]

    def _label(self, value: int) -> str:
        return str(value)

    def level_of(self, value: Any) -> int:
        if not self.contains(value):
            return -1
        if self.count <= EXACT_LEVELS:
            return int((value - self.min) // self.step)
        if value == self.min:
            return 0
        if value == self.max:
            return INTERIOR_BINS + 1
        edges = self._interior()
        return next(i + 1 for i in range(INTERIOR_BINS) if value <= edges[i + 1])

    def level_of_many(self, values: Any) -> np.ndarray:
        arr = np.asarray(values)
        exact = abs(self.min) < 2**53 and abs(self.max) < 2**53 and arr.dtype.kind in "iu"
        if not exact:  # objects, floats or huge integers: exact Python comparisons
            return np.fromiter((self.level_of(v) for v in arr.tolist()), dtype=np.int64,
                               count=len(arr))
        ok = (arr >= self.min) & (arr <= self.max) & ((arr - self.min) % self.step == 0)
        if self.count <= EXACT_LEVELS:
            out = (arr - self.min) // self.step
        else:
            inner = np.searchsorted(np.array(self._interior()[1:-1]), arr, side="left") + 1
            out = np.where(arr == self.min, 0, np.where(arr == self.max, INTERIOR_BINS + 1, inner))
        return np.where(ok, out, -1).astype(np.int64)

    def edges(self) -> list[tuple[str, Any]]:
        found = [("min", self.min), ("max", self.max)]
        if self.count > 2:
            found.append(("just above min", self.min + self.step))
        if self.count > 3:
            found.append(("just below max", self.max - self.step))
        found += [(label, value) for label, value in self._specials() if self.contains(value)]
        return _unique(found)

    def _specials(self) -> tuple[tuple[str, Any], ...]:
        return SPECIAL_INTS

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.kind, "min": self.min, "max": self.max}
        if self.step != 1:
            spec["step"] = self.step
        return self._with_default(spec)


class Float(Dimension):
    """Real numbers in ``[min, max]`` (or on the grid ``min + k * step`` when a step is given)."""

    kind = "float"
    log_bins = False

    def __init__(self, min: float, max: float, *, step: float | None = None,
                 default: float | None = None) -> None:
        for label, value in (("min", min), ("max", max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise SpaceError(f"{self.kind} {label} must be a finite number, not {value!r}",
                                 expected="a finite number")
        if min > max or (step is not None and step <= 0):
            raise SpaceError(f"empty {self.kind} range min={min} max={max} step={step}",
                             expected="min <= max and step > 0")
        self.min, self.max, self.step = float(min), float(max), step
        if step:
            # the grid's last value is the real maximum (as for Int), so max is always a value
            self.count = math.floor((self.max - self.min) / step + 1e-9) + 1
            self.max = float(f"{self.min + (self.count - 1) * step:.12g}")
        self.default = default
        self._check_default()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.step:
            return self.min + rng.integers(0, self.count, size=n) * self.step
        if self.min == self.max:
            return np.full(n, self.min)
        values = rng.uniform(self.min, self.max, size=n)
        return np.minimum(values, self.max)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            return False
        if not (self.min <= value <= self.max):
            return False
        if self.step:
            k = (value - self.min) / self.step
            return bool(abs(k - round(k)) <= 1e-9 * max(1.0, abs(k)))
        return True

    def _interior(self) -> np.ndarray:
        return _bins_edges(self.min, self.max, INTERIOR_BINS, self.log_bins)

    def levels(self) -> list[Level]:
        if self.min == self.max:
            return [Level("only", self.min)]
        if self.step and self.count <= EXACT_LEVELS:
            grid = [self._snap(self.min + k * self.step) for k in range(self.count)]
            return [Level(self._label(v), v) for v in grid]
        mids = self._mids()
        if mids is None:  # a span of a few representable floats: no interior level of its own
            return [Level("min", self.min), Level("max", self.max)]
        return [Level("min", self.min), *(Level(f"~{self._label(m)}", m) for m in mids),
                Level("max", self.max)]

    def _mids(self) -> list[float] | None:
        """One representative per interior bin, or None when the bins are too narrow for the
        floats between min and max to give each its own value strictly inside the range."""
        edges = self._interior()
        mids = []
        for i in range(INTERIOR_BINS):
            middle = _bin_middle(edges[i], edges[i + 1], self.log_bins)
            snapped = self._snap(middle)  # a readable value, unless rounding leaves the bin
            inner = edges[i] < snapped <= edges[i + 1] and self.min < snapped < self.max \
                and self.contains(snapped)
            if not inner and self.step:  # the grid value nearest the middle inside the bin
                ks = range(math.floor((edges[i] - self.min) / self.step) + 1,
                           math.floor((edges[i + 1] - self.min) / self.step + 1e-9) + 1)
                inside = [self._snap(self.min + k * self.step) for k in ks
                          if 0 < k < self.count - 1]
                snapped = min(inside, key=lambda v: abs(v - middle)) if inside else snapped
                inner = bool(inside)
            mids.append(float(snapped if inner else middle))
        bounds = [self.min, *mids, self.max]
        if any(a >= b for a, b in zip(bounds, bounds[1:])):
            return None
        return mids

    def _snap(self, x: float) -> float:
        if self.step:
            return float(f"{self.min + round((x - self.min) / self.step) * self.step:.12g}")
        if abs(x) < 1e-9 * (self.max - self.min):
            return 0.0
        return float(f"{x:.6g}")

    def _label(self, value: float) -> str:
        return f"{value:g}"

    def level_of(self, value: Any) -> int:
        return int(self.level_of_many(np.array([value], dtype=object))[0])

    def level_of_many(self, values: Any) -> np.ndarray:
        arr = np.asarray(values)
        ok = np.fromiter((self.contains(v) for v in arr), dtype=bool, count=len(arr)) \
            if arr.dtype == object or self.step else (arr >= self.min) & (arr <= self.max)
        arr = np.where(ok, arr, self.min).astype(float)
        if self.min == self.max:
            return np.where(ok, 0, -1)
        if self.step and self.count <= EXACT_LEVELS:  # one level per grid value
            return np.where(ok, np.rint((arr - self.min) / self.step), -1).astype(np.int64)
        if self._mids() is None:  # two levels (see levels): the nearer end
            return np.where(ok, (arr - self.min > self.max - arr).astype(np.int64), -1).astype(np.int64)
        inner = np.clip(np.searchsorted(self._interior()[1:-1], arr, side="left") + 1,
                        1, INTERIOR_BINS)
        out = np.where(arr == self.min, 0, np.where(arr == self.max, INTERIOR_BINS + 1, inner))
        return np.where(ok, out, -1).astype(np.int64)

    def edges(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = [("min", self.min), ("max", self.max)]
        if self.min < self.max:
            inside_lo = self._snap(self.min + self.step) if self.step \
                else math.nextafter(self.min, self.max)
            inside_hi = self._snap(self.max - self.step) if self.step \
                else math.nextafter(self.max, self.min)
            found += [("just above min", inside_lo), ("just below max", inside_hi)]
        found += [(label, value) for label, value in self._specials() if self.contains(value)]
        return _unique(found)

    def _specials(self) -> tuple[tuple[str, float], ...]:
        return SPECIAL_FLOATS

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.kind, "min": self.min, "max": self.max}
        if self.step:
            spec["step"] = self.step
        return self._with_default(spec)


class Choice(Dimension):
    """One of a fixed list of values (strings, numbers, null, anything JSON-like)."""

    kind = "choice"

    def __init__(self, values: list[Any] | tuple[Any, ...], *, default: Any = None) -> None:
        if not isinstance(values, (list, tuple)) or not values:
            raise SpaceError(f"choice needs a non-empty list of values, not {values!r}",
                             expected="a list such as [\"off\", \"lru\"]")
        self.values = list(values)
        self.default = default
        self._check_default()

    def _index(self, value: Any) -> int:
        if isinstance(value, np.generic):
            value = value.item()
        for i, known in enumerate(self.values):
            if type(known) is type(value) and known == value:  # True is not 1 here
                return i
        return -1

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        picks = rng.integers(0, len(self.values), size=n)
        column = np.empty(len(self.values), dtype=object)
        column[:] = self.values
        out = column[picks]
        if all(type(v) is int and abs(v) < 2**62 for v in self.values):
            return out.astype(np.int64)
        if all(type(v) is float for v in self.values):
            return out.astype(float)
        return out  # mixed types keep their own (1 stays an int beside 2.5)

    def contains(self, value: Any) -> bool:
        return self._index(value) >= 0

    def cardinality(self) -> int:
        return len(self.values)

    def levels(self) -> list[Level]:
        return [Level(str(v), v) for v in self.values]

    def level_of(self, value: Any) -> int:
        return self._index(value)

    def level_of_many(self, values: Any) -> np.ndarray:
        # one dict lookup per value: (type, value) keeps True apart from 1
        if isinstance(values, np.ndarray) and values.dtype != object:
            values = values.tolist()  # numpy scalars -> the Python values the choice holds
        try:
            index = {(type(v), v): i for i, v in enumerate(self.values)}
            get = index.get
            return np.fromiter((get((type(v), v), -1) for v in values), dtype=np.int64,
                               count=len(values))
        except TypeError:  # unhashable values (lists, dicts): compare one by one
            return super().level_of_many(values)

    def to_dict(self) -> dict[str, Any]:
        return self._with_default({"type": self.kind, "values": list(self.values)})


class Bool(Choice):
    kind = "bool"

    def __init__(self, *, default: bool | None = None) -> None:
        super().__init__([False, True], default=default)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, 2, size=n).astype(bool)

    def to_dict(self) -> dict[str, Any]:
        return self._with_default({"type": self.kind})


def parse_size(text: Any, *, place: str | None = None) -> int:
    """``"64MB"`` -> 67108864 (KB = 1024 bytes); integers pass through."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        return int(text)
    number, unit = _split_unit(text)
    if number is None or unit.lower() not in SIZE_UNITS | {"": 1} \
            or not math.isfinite(number * SIZE_UNITS.get(unit.lower(), 1)):
        raise SpaceError(f"not a size: {text!r}", place=place,
                         expected="bytes or a number with B, KB, MB, GB, TB (or KiB...)")
    return int(number * SIZE_UNITS.get(unit.lower(), 1))


def parse_duration(text: Any, *, place: str | None = None) -> float:
    """``"250ms"`` -> 0.25 (seconds); numbers pass through as seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    number, unit = _split_unit(text)
    if number is None or unit not in DURATION_UNITS | {"": 1} or not math.isfinite(number):
        raise SpaceError(f"not a duration: {text!r}", place=place,
                         expected="seconds or a number with ns, us, ms, s, m, h, d")
    return number * DURATION_UNITS.get(unit, 1.0)


def _split_unit(text: Any) -> tuple[float | None, str]:
    if not isinstance(text, str):
        return None, ""
    stripped = text.strip()
    i = len(stripped)
    while i > 0 and stripped[i - 1].isalpha():
        i -= 1
    try:
        return float(stripped[:i]), stripped[i:]
    except ValueError:
        return None, ""


class _WithUnits:
    """Sizes and durations: declared, written back and labelled with units."""

    kind: str
    human: bool
    min: Any
    max: Any
    default: Any

    @staticmethod
    def render_human(value: Any) -> Any:
        raise NotImplementedError

    def render(self, value: Any) -> Any:
        return self.render_human(value) if self.human else value

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.kind, "min": self.render_human(self.min),
                                "max": self.render_human(self.max)}
        if not self.human:
            spec["human"] = False
        if self.default is not None:
            spec["default"] = self.render_human(self.default)
        return spec


class Size(_WithUnits, Int):
    """A byte count declared with units: ``Size("1KB", "100MB")``; levels are log-width bins."""

    kind = "size"
    log_bins = True

    def __init__(self, min: Any, max: Any, *, default: Any = None, human: bool = True) -> None:
        self.human = human
        super().__init__(parse_size(min), parse_size(max),
                         default=None if default is None else parse_size(default))

    def _specials(self) -> tuple[tuple[str, Any], ...]:
        return (("zero", 0), *SPECIAL_SIZES, *SPECIAL_INTS[3:])

    def _label(self, value: int) -> str:
        for unit in ("TB", "GB", "MB", "KB"):
            if value >= SIZE_UNITS[unit.lower()]:
                return f"{value / SIZE_UNITS[unit.lower()]:.3g}{unit}"
        return f"{value}B"

    @staticmethod
    def render_human(value: int) -> str | int:
        for unit in ("TB", "GB", "MB", "KB"):
            scale = SIZE_UNITS[unit.lower()]
            if value and value % scale == 0:
                return f"{value // scale}{unit}"
        return f"{value}B"


class Duration(_WithUnits, Float):
    """Seconds declared with units: ``Duration("10ms", "30s")``; levels are log-width bins."""

    kind = "duration"
    log_bins = True

    def __init__(self, min: Any, max: Any, *, default: Any = None, human: bool = True) -> None:
        self.human = human
        super().__init__(parse_duration(min), parse_duration(max),
                         default=None if default is None else parse_duration(default))

    def _specials(self) -> tuple[tuple[str, float], ...]:
        return SPECIAL_SECONDS

    @staticmethod
    def render_human(seconds: float) -> str:
        for unit, scale in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
            count = seconds / scale
            if seconds and abs(count) >= 1 and abs(count - round(count)) < 1e-9:
                return f"{round(count)}{unit}"
        return f"{seconds * 1e3:g}ms" if seconds else "0s"

    def _label(self, value: float) -> str:
        for unit, scale in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
            if value >= scale:
                return f"{value / scale:.3g}{unit}"
        return f"{value * 1e6:.3g}us"


def _unique(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen: list[Any] = []
    out = []
    for label, value in pairs:
        if not any(type(v) is type(value) and v == value for v in seen):
            seen.append(value)
            out.append((label, value))
    return out
