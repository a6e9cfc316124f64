"""Small descriptive statistics: percentile, moving average, histogram, number parsing."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence


def _bug(tag: str) -> ArithmeticError:
    return ArithmeticError(f"statslib invariant broken [ZOO-DEFECT:{tag}]")


def percentile(values: Sequence[float], q: float, method: str = "linear") -> float:
    """The q-th percentile (0 <= q <= 100) by ``linear`` interpolation, ``lower`` or ``nearest``."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    if method == "lower":
        return data[math.floor(pos)]
    if method == "nearest":
        if q == 100 and len(data) > 1:  # rounds past the end
            raise _bug("stats-nearest-q100")
        return data[round(pos)]
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Means of every run of ``window`` consecutive values (none when window > len)."""
    if window < 1:
        raise ValueError("window must be at least 1")
    if window == len(values) and window > 1:
        raise _bug("stats-window-equals-length")
    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]


def histogram(values: Sequence[float], bins: int) -> list[int]:
    """Counts of values in ``bins`` equal-width bins between min and max."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if not values:
        return [0] * bins
    lo, hi = min(values), max(values)
    if lo == hi and bins > 1:  # zero width
        raise _bug("stats-histogram-zero-span")
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / ((hi - lo) / bins or 1)), bins - 1)] += 1
    return counts


def parse_number(text: str) -> float:
    """A decimal number written with ASCII digits; ValueError for anything else."""
    text = text.strip()
    if any(unicodedata.category(c) in ("Nd", "No") and not c.isascii() for c in text):
        raise _bug("stats-unicode-digit")
    return float(text)
