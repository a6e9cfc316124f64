"""Is failure tied to an environment factor (worker, host, run) once the variants are held fixed?

Why stratify. A worker runs the variants the scheduler gave it; when most failing variants landed
on one worker, failure and worker go together though the worker plays no part. The only
executions that can tell are those of a variant that ran in more than one environment: within
such a variant the parameters are the same, so a difference in failure rate between its
environments is the environment's. Each such variant is one stratum.

The test (``stratified_test``): the generalised Cochran-Mantel-Haenszel statistic for a
k-level factor x pass/fail, conditional on both margins of every stratum (Landis, Heyman & Koch
1978): per stratum the failures per level are hypergeometric with mean ``n_i F / N`` and
covariance ``F (N - F) / (N^2 (N - 1)) (N diag(n) - n n')``; the summed deviations over the
summed covariance give a chi-square with (k - 1) degrees of freedom. With little information
(fewer than ``EXACT_BELOW`` failures or passes in the informative strata) the p-value is an
exact conditional one, estimated by a seeded Monte-Carlo draw of every stratum's table with its
margins fixed (``MC_SAMPLES`` draws), as the asymptotic chi-square is unreliable there.

Strata with one environment, or where every execution failed or every one passed, carry no
information and drop out. When no stratum has two environments the factor is *not testable*:
it is confounded with the variants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

EXACT_BELOW = 30      # failures (or passes) in informative strata below which the test is exact
MC_SAMPLES = 9999
NOT_TESTABLE = "not testable: confounded with the variants"


@dataclass
class StratifiedResult:
    """The outcome of one stratified test; ``p_value`` is None when it was not testable."""

    test: str
    p_value: float | None
    statistic: float | None = None
    strata: int = 0              # variants that ran in more than one environment
    executions: int = 0          # executions in those variants
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _tables(levels: np.ndarray, failed: np.ndarray, strata: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Executions and failures per (stratum, level), for strata with two or more levels."""
    keep = levels >= 0
    levels, failed, strata = levels[keep], failed[keep], strata[keep]
    s = _codes(strata) if strata.dtype == object else \
        np.unique(strata, return_inverse=True)[1].reshape(-1)
    _, lv = np.unique(levels, return_inverse=True)
    lv = lv.reshape(-1)
    k = int(lv.max()) + 1 if lv.size else 0
    m = int(s.max()) + 1 if s.size else 0
    code = s * max(k, 1) + lv
    n = np.bincount(code, minlength=m * k).reshape(m, k)
    f = np.bincount(code, weights=failed.astype(float), minlength=m * k).reshape(m, k)
    mixed = (n > 0).sum(axis=1) >= 2
    return n[mixed].astype(np.int64), f[mixed].astype(np.int64)


def _codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes of any hashable labels, in order of first appearance (a dict beats
    ``np.unique`` on long variant-id strings by an order of magnitude)."""
    seen: dict[object, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in labels.tolist()),
                       dtype=np.int64, count=labels.size)


def _covariance(n: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected failures per (stratum, level) and the summed covariance of the deviations."""
    big_n = n.sum(axis=1).astype(float)
    big_f = f.sum(axis=1).astype(float)
    expected = n * (big_f / big_n)[:, None]
    scale = big_f * (big_n - big_f) / (big_n ** 2 * (big_n - 1))
    v = np.diag((scale * big_n) @ n) - np.einsum("h,hi,hj->ij", scale, n, n)
    return expected, v


def stratified_test(levels: np.ndarray, failed: np.ndarray, strata: np.ndarray, *,
                    seed: int = 0) -> StratifiedResult:
    """Whether failure depends on ``levels`` (integer codes, -1 missing) within ``strata``
    (one label per execution, e.g. the variant id). See the module docstring."""
    n, f = _tables(np.asarray(levels), np.asarray(failed, dtype=bool), np.asarray(strata))
    if n.shape[0] == 0:
        return StratifiedResult("cochran-mantel-haenszel", None, note=NOT_TESTABLE)
    big_n, big_f = n.sum(axis=1), f.sum(axis=1)
    info = (big_f > 0) & (big_f < big_n)
    out = StratifiedResult("cochran-mantel-haenszel", 1.0, 0.0, int(n.shape[0]), int(n.sum()))
    if not info.any():
        out.note = (f"{n.shape[0]} variant(s) ran in more than one environment; in each, every "
                    "execution had the same outcome")
        return out
    n, f = n[info], f[info]
    used = n.sum(axis=0) > 0
    n, f = n[:, used], f[:, used]
    expected, v = _covariance(n, f)
    dof = int(np.linalg.matrix_rank(v))
    inverse = np.linalg.pinv(v)
    d = (f - expected).sum(axis=0)
    statistic = float(d @ inverse @ d)
    out.statistic = statistic
    out.details = {"informative_strata": int(n.shape[0]), "dof": dof}
    if dof == 0:
        return out
    fails, passes = int(f.sum()), int(n.sum() - f.sum())
    if min(fails, passes) >= EXACT_BELOW:
        out.p_value = float(stats.chi2.sf(statistic, dof))
        return out
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.multivariate_hypergeometric(row, int(k), size=MC_SAMPLES)
                      for row, k in zip(n, f.sum(axis=1))], axis=1)   # (samples, strata, levels)
    deviations = (draws - expected[None]).sum(axis=1)
    simulated = np.einsum("si,ij,sj->s", deviations, inverse, deviations)
    out.test = "cochran-mantel-haenszel (exact conditional, monte-carlo)"
    out.p_value = float((1 + np.count_nonzero(simulated >= statistic * (1 - 1e-9)))
                        / (MC_SAMPLES + 1))
    out.details["samples"] = MC_SAMPLES
    return out
