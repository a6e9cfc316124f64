"""statslib's documented contracts: results lie within the data, empty input is a ValueError,
bad text is a ValueError."""

from __future__ import annotations

import math

import pytest
import statslib

import testfleet
from testfleet import Choice, Float, Int, ListOf, String


def test_median() -> None:
    assert statslib.percentile([3, 1, 2], 50) == 2


@testfleet.explore(values=ListOf(Float(-1e6, 1e6), 0, 60), q=Int(0, 100, default=50),
                   method=Choice(["linear", "lower", "nearest"]))
def test_percentile_within_data(values: list[float], q: int, method: str) -> None:
    if not values:
        with pytest.raises(ValueError):
            statslib.percentile(values, q, method)
        return
    p = statslib.percentile(values, q, method)
    assert min(values) <= p <= max(values)


@testfleet.explore(values=ListOf(Int(-100, 100), 0, 50), window=Int(1, 60, default=3),
                   bins=Int(1, 20, default=5))
def test_window_and_bins(values: list[int], window: int, bins: int) -> None:
    averages = statslib.moving_average(values, window)
    assert len(averages) == max(0, len(values) - window + 1)
    for avg in averages:
        assert min(values) <= avg <= max(values)
    counts = statslib.histogram(values, bins)
    assert len(counts) == bins and sum(counts) == len(values)


@testfleet.explore(text=String(1, 12, charset="0123456789-.e+ ", default="3.25"))
def test_parse_number(text: str) -> None:
    try:
        expected = float(text)
    except ValueError:
        with pytest.raises(ValueError):
            statslib.parse_number(text)
        return
    got = statslib.parse_number(text)
    assert got == expected or (math.isnan(got) and math.isnan(expected))
