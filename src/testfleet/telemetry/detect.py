"""Anomaly detection over per-execution telemetry summaries.

Two detectors, both pure (numpy/scipy, no I/O):

* **Outliers** -- :class:`RobustBaseline` keeps a sliding window of the last
  values of one ``(case_id, metric)`` pair and scores each new value with a
  robust z-score ``(x - median) / sigma`` where ``sigma = 1.4826 * MAD``,
  floored relative to the median and absolutely so that constant series do not
  produce infinite scores.  The new value is scored against the history
  *before* it is added.

* **Leaks** -- :func:`leak_trend` decides whether a series of per-execution
  values (typically ``sut.rss_mb`` max) shows sustained growth.  A leak needs
  all of

  1. a significant monotone upward trend over the whole series (one-sided
     Kendall tau of value vs. execution index, ``p < alpha``);
  2. a significant upward trend in *each half* of the series on its own
     (one-sided Kendall, ``p < half_alpha``), so that growth which plateaus
     early (second half flat) is not a leak;
  3. a straight line must fit better (smaller squared error) than the best
     single step (two constant levels, any split point), so a one-time
     allocation is not a leak, while a staircase of repeated allocations is;
  4. practical growth: the Theil--Sen slope times ``n - 1`` must be at least
     ``min_rel_growth`` of the median of the first values and more than
     ``min_growth`` in absolute units.

:class:`Detector` ties both together, keyed by ``(case_id, metric)``, and
produces :class:`Anomaly` records ready to be stored as events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads only where a leak check has a series to test (see leak_trend)
    import numpy as np

__all__ = [
    "Anomaly",
    "Detector",
    "RobustBaseline",
    "leak_trend",
]

MAD_SCALE = 1.4826
MAX_Z = 1e12  # robust z is clipped to +/- this so that it always stays finite


@dataclass(frozen=True)
class Anomaly:
    """One detected anomaly.

    ``kind`` is ``"outlier"`` or ``"leak"``.  For outliers ``spread`` is the
    (floored) MAD-scaled sigma and ``score`` the robust z; for leaks ``spread``
    is the Theil--Sen slope per execution and ``score`` the standard normal
    deviate equivalent to the one-sided trend p-value.
    """

    kind: str
    case_id: str
    metric: str
    value: float
    baseline: float
    spread: float
    score: float
    variant_id: str | None
    index: int | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _finite(x: float) -> float:
    """Clip to a finite float (nan -> 0)."""
    if math.isnan(x):
        return 0.0
    if math.isinf(x):
        return math.copysign(MAX_Z, x)
    return x


def _median(values: Iterable[float]) -> float:
    """Median of finite floats that does not overflow when averaging the two middle values.

    Plain Python: the coordinator takes the median of a window of at most ``window`` (50) values
    several times per result, where numpy's per-call overhead is more than the sort itself."""
    srt = sorted(values)
    mid = len(srt) // 2
    if len(srt) % 2:
        return srt[mid]
    return srt[mid - 1] / 2.0 + srt[mid] / 2.0


def _z(value: float, med: float, sigma: float) -> float:
    """Robust z of ``value`` against a median and spread (0 for an empty window's nan)."""
    if math.isnan(med):
        return 0.0
    return _finite((value - med) / sigma)  # floats overflow to inf here, as numpy's do


class RobustBaseline:
    """Streaming median/MAD baseline for one ``(case_id, metric)`` series.

    ``update(value)`` returns ``(is_outlier, z)``.  Nothing is flagged before
    ``min_history`` values have been seen.  With ``two_sided=False`` (the
    default, suited to resource metrics) only values *above* the baseline are
    flagged.  Non-finite values are ignored (``(False, 0.0)``, not stored).
    """

    def __init__(
        self,
        window: int = 50,
        *,
        min_history: int = 8,
        threshold: float = 4.0,
        two_sided: bool = False,
        rel_floor: float = 0.02,
        abs_floor: float = 1e-3,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if min_history < 1:
            raise ValueError("min_history must be >= 1")
        if threshold <= 0:
            raise ValueError("threshold must be > 0")
        if rel_floor < 0 or abs_floor <= 0:
            raise ValueError("rel_floor must be >= 0 and abs_floor > 0")
        self.window = window
        self.min_history = min(min_history, window)
        self.threshold = float(threshold)
        self.two_sided = two_sided
        self.rel_floor = float(rel_floor)
        self.abs_floor = float(abs_floor)
        self._values: deque[float] = deque(maxlen=window)
        #: median / sigma of the history the last value was scored against
        self.last_median: float = math.nan
        self.last_sigma: float = math.nan

    def __len__(self) -> int:
        return len(self._values)

    def center_spread(self) -> tuple[float, float]:
        """``(median, sigma)`` of the current window (nan, nan when empty)."""
        if not self._values:
            return math.nan, math.nan
        med = _median(self._values)
        mad = _median(abs(v - med) for v in self._values)
        sigma = MAD_SCALE * mad
        floor = max(self.rel_floor * abs(med), self.abs_floor)
        if not (sigma >= floor):  # also catches nan
            sigma = floor
        return med, sigma

    def score(self, value: float) -> float:
        """Robust z of ``value`` against the current window (0 if empty)."""
        return _z(value, *self.center_spread())

    def update(self, value: float) -> tuple[bool, float]:
        value = float(value)
        if not math.isfinite(value):
            return False, 0.0
        # one pass over the window per value: the coordinator updates several series per result
        med, sigma = self.center_spread()
        self.last_median, self.last_sigma = med, sigma
        z = _z(value, med, sigma) if self._values else 0.0
        enough = len(self._values) >= self.min_history
        if self.two_sided:
            flagged = enough and abs(z) >= self.threshold
        else:
            flagged = enough and z >= self.threshold
        self._values.append(value)
        return bool(flagged), z


def _kendall_greater(values: np.ndarray) -> float:
    """One-sided p-value of an increasing trend vs. index (1.0 if undefined)."""
    import numpy as np

    if values.size < 3:
        return 1.0
    from scipy import stats  # ~1 s to import: only a leak check at the run's end pays it

    idx = np.arange(values.size, dtype=float)
    with np.errstate(all="ignore"):
        res = stats.kendalltau(idx, values, alternative="greater")
    p = float(res.pvalue)
    return p if math.isfinite(p) else 1.0


def _line_sse(arr: np.ndarray) -> float:
    import numpy as np

    idx = np.arange(arr.size, dtype=float)
    with np.errstate(all="ignore"):
        coef = np.polyfit(idx, arr, 1)
        resid = arr - np.polyval(coef, idx)
    return float(np.sum(resid * resid))


def _best_step_sse(arr: np.ndarray) -> float:
    """Smallest SSE of a two-level piecewise-constant fit (split >= 2 points each)."""
    import numpy as np

    n = arr.size
    if n < 4:
        return math.inf
    arr = arr - arr.mean()  # centre first: limits cancellation in the sums
    csum = np.cumsum(arr)
    csq = np.cumsum(arr * arr)
    k = np.arange(2, n - 1)  # left segment arr[:k]
    left = csq[k - 1] - csum[k - 1] ** 2 / k
    right = (csq[-1] - csq[k - 1]) - (csum[-1] - csum[k - 1]) ** 2 / (n - k)
    return float(np.min(left + right))


def leak_trend(
    values: Sequence[float],
    *,
    alpha: float = 0.01,
    min_points: int = 8,
    min_growth: float = 1.0,
    min_rel_growth: float = 0.10,
    half_alpha: float = 0.05,
) -> tuple[bool, float, float, float]:
    """Test a per-execution series for sustained growth (a probable leak).

    Returns ``(is_leak, slope per execution, p_value, total growth)`` where the
    slope is Theil--Sen, ``p_value`` the one-sided Kendall trend p-value over
    the whole series and total growth ``slope * (n - 1)``.  Non-finite values
    are dropped.  See the module docstring for the decision rule; in short a
    single step or an early plateau is *not* a leak.
    """
    finite = [x for x in (float(v) for v in values) if math.isfinite(x)]
    n = len(finite)
    if n < max(min_points, 3):
        return False, 0.0, 1.0, 0.0
    import numpy as np  # ~0.15 s to import: only a series long enough to test pays it

    arr = np.asarray(finite, dtype=float)
    from scipy import stats  # ~1 s to import: only a run with a series long enough pays it

    idx = np.arange(n, dtype=float)
    with np.errstate(all="ignore"):
        slope = float(stats.theilslopes(arr, idx)[0])
    if not math.isfinite(slope):
        slope = 0.0
    growth = slope * (n - 1)
    p = _kendall_greater(arr)

    half = n // 2
    first, second = arr[:half], arr[n - half :]
    p_first = _kendall_greater(first)
    p_second = _kendall_greater(second)
    # a single step (two constant levels) must not explain the data better
    # than a straight line does
    sustained = _line_sse(arr) < _best_step_sse(arr)

    k = max(3, n // 4)
    start = float(np.median(arr[:k]))
    practical = growth > min_growth and growth >= min_rel_growth * abs(start)

    is_leak = bool(
        slope > 0
        and p < alpha
        and p_first < half_alpha
        and p_second < half_alpha
        and sustained
        and practical
    )
    return is_leak, slope, p, growth


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class Detector:
    """Per-``(case_id, metric)`` outlier baselines plus leak series.

    ``observe`` is called once per execution with that execution's telemetry
    summary (``{metric: {stat: value}}``) and returns the outliers found.
    ``leaks`` runs :func:`leak_trend` over everything observed for a case.
    """

    def __init__(
        self,
        *,
        window: int = 50,
        min_history: int = 8,
        threshold: float = 4.0,
        two_sided_metrics: Iterable[str] = (),
        rel_floor: float = 0.02,
        abs_floor: float = 1e-3,
        leak_alpha: float = 0.01,
        leak_min_points: int = 8,
        leak_min_growth: float = 1.0,
        leak_min_rel_growth: float = 0.10,
        max_series: int = 10_000,
    ) -> None:
        self.min_history = min_history
        self.threshold = threshold
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor
        self.window = window
        self.two_sided_metrics = frozenset(two_sided_metrics)
        self.leak_alpha = leak_alpha
        self.leak_min_points = leak_min_points
        self.leak_min_growth = leak_min_growth
        self.leak_min_rel_growth = leak_min_rel_growth
        self._baselines: dict[tuple[str, str], RobustBaseline] = {}
        self._series: dict[tuple[str, str], deque[float]] = {}
        self._max_series = max_series
        self._count: dict[str, int] = {}
        self._last_variant: dict[str, str | None] = {}

    def baseline(self, case_id: str, metric: str) -> RobustBaseline:
        key = (case_id, metric)
        bl = self._baselines.get(key)
        if bl is None:
            bl = RobustBaseline(
                self.window,
                min_history=self.min_history,
                threshold=self.threshold,
                two_sided=metric in self.two_sided_metrics,
                rel_floor=self.rel_floor,
                abs_floor=self.abs_floor,
            )
            self._baselines[key] = bl
        return bl

    def baselines_of(self, case_id: str) -> dict[str, RobustBaseline]:
        """The case's baselines so far, by metric."""
        return {metric: bl for (case, metric), bl in self._baselines.items() if case == case_id}

    def executions(self, case_id: str) -> int:
        return self._count.get(case_id, 0)

    def observe(
        self,
        case_id: str,
        variant_id: str | None,
        summary: Mapping[str, Mapping[str, float]],
        stat: str = "max",
    ) -> list[Anomaly]:
        index = self._count.get(case_id, 0)
        self._count[case_id] = index + 1
        self._last_variant[case_id] = variant_id
        found: list[Anomaly] = []
        for metric in sorted(summary):
            stats_ = summary[metric]
            if not isinstance(stats_, Mapping) or stat not in stats_:
                continue
            try:
                value = float(stats_[stat])
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                continue
            series = self._series.setdefault(
                (case_id, metric), deque(maxlen=self._max_series)
            )
            series.append(value)
            bl = self.baseline(case_id, metric)
            flagged, z = bl.update(value)
            if flagged:
                found.append(
                    Anomaly(
                        kind="outlier",
                        case_id=case_id,
                        metric=metric,
                        value=value,
                        baseline=bl.last_median,
                        spread=bl.last_sigma,
                        score=z,
                        variant_id=variant_id,
                        index=index,
                        message=(
                            f"{metric} {_fmt(value)} vs baseline "
                            f"{_fmt(bl.last_median)} (robust z {z:.1f})"
                        ),
                    )
                )
        return found

    def leaks(self, case_id: str, metric: str = "sut.rss_mb") -> Anomaly | None:
        series = self._series.get((case_id, metric))
        if not series:
            return None
        values = list(series)
        is_leak, slope, p, growth = leak_trend(
            values,
            alpha=self.leak_alpha,
            min_points=self.leak_min_points,
            min_growth=self.leak_min_growth,
            min_rel_growth=self.leak_min_rel_growth,
        )
        if not is_leak:
            return None
        k = max(3, len(values) // 4)
        start = _median(values[:k])
        from scipy import stats  # imported already by the leak test above

        score = _finite(float(stats.norm.isf(max(p, 1e-300))))
        return Anomaly(
            kind="leak",
            case_id=case_id,
            metric=metric,
            value=values[-1],
            baseline=start,
            spread=slope,
            score=score,
            variant_id=self._last_variant.get(case_id),
            index=self._count.get(case_id, len(values)) - 1,
            message=(
                f"{metric} grows {slope:+.3g}/execution over {len(values)} "
                f"executions: {_fmt(start)} -> {_fmt(values[-1])} "
                f"(+{_fmt(growth)} trend, p={p:.2g})"
            ),
        )
