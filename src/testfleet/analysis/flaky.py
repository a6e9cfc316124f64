"""Flaky tests: the same code and the same variant, sometimes passing and sometimes failing.

Definition. Executions are grouped by (variant, git sha): the same test with the same parameters
on the same code. Runs without a git sha cannot be matched with other runs, so each such run is a
group of its own (only its reruns and replicas can show flakiness). A group is *flaky* when it
holds at least one pass (``passed``/``xpassed``) and at least one failure (``failed``,
``error``, ``timeout``, ``crashed``); ``skipped`` and ``xfailed`` executions do not count. So a
test that fails every time under one sha is broken, not flaky, and a test that fails under sha A
and passes under sha B was changed (fixed or broken by the commit), not flaky.

Score. The probability that an execution fails although neither code nor variant changed,
estimated as failures / executions pooled over the test's flaky groups. Every attempt counts,
reruns included: a rerun happens because the attempt before it failed, but a stopping rule that
only looks at past outcomes leaves the likelihood p^f (1-p)^(n-f) unchanged, so f/n is still the
maximum-likelihood estimate. Its uncertainty is the Wilson score interval (95% by default), which
stays inside [0, 1], always contains the estimate and behaves at 0 and n failures. (Pooling only
over groups where both outcomes occur selects on the outcome: with few executions per sha the
score leans towards the middle; the interval says how little a few executions show.)

Tests are ranked by the interval's lower bound (a high score backed by many executions first),
then by score. Pure: rows in, :class:`FlakyTest` out; no store access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from math import sqrt
from statistics import NormalDist
from typing import Any

from testfleet.analysis.failures import as_datetime
from testfleet.model import FAILURE_OUTCOMES

PASS_OUTCOMES = frozenset({"passed", "xpassed"})


@dataclass
class FlakyTest:
    nodeid: str
    variant_id: str
    score: float
    low: float
    high: float
    executions: int
    failures: int
    passes: int
    evidence: str
    git_shas: list[str] = field(default_factory=list)
    last_seen: datetime | None = None
    runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid, "variant_id": self.variant_id, "score": self.score,
            "low": self.low, "high": self.high, "executions": self.executions,
            "failures": self.failures, "passes": self.passes, "evidence": self.evidence,
            "git_shas": list(self.git_shas), "runs": self.runs,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


def wilson_interval(failures: int, executions: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when nothing was executed."""
    if executions <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n, p = executions, failures / executions
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # clamp away rounding so that 0 <= low <= p <= high <= 1 holds exactly
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass
class _Group:
    """The counted executions of one variant under one code key (a sha, or a run without one)."""
    sha: str | None
    failures: int = 0
    passes: int = 0
    runs: dict[str, list[Mapping[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    last_seen: datetime | None = None

    @property
    def flaky(self) -> bool:
        return self.failures > 0 and self.passes > 0


def flaky_tests(rows: Sequence[Mapping[str, Any]], *, min_executions: int = 2,
                confidence: float = 0.95) -> list[FlakyTest]:
    """The flaky tests among ``rows`` (executions with run_id, git_sha, variant_id, nodeid,
    attempt, outcome, final, flaky, finished_at), most convincingly flaky first."""
    groups: dict[tuple[str, tuple[str, str]], _Group] = {}
    nodeids: dict[str, str] = {}
    for row in rows:
        outcome = str(row.get("outcome"))
        failed = outcome in FAILURE_OUTCOMES
        if not failed and outcome not in PASS_OUTCOMES:
            continue
        variant, run = str(row.get("variant_id")), str(row.get("run_id"))
        sha = row.get("git_sha") or None
        code = ("sha", str(sha)) if sha else ("run", run)
        group = groups.get((variant, code))
        if group is None:
            group = groups[variant, code] = _Group(sha=str(sha) if sha else None)
        nodeids.setdefault(variant, str(row.get("nodeid")))
        group.failures += failed
        group.passes += not failed
        group.runs[run].append(row)
        when = as_datetime(row.get("finished_at"))
        if when is not None and (group.last_seen is None or when > group.last_seen):
            group.last_seen = when
    by_variant: dict[str, list[_Group]] = defaultdict(list)
    for (variant, _code), group in groups.items():
        if group.flaky:
            by_variant[variant].append(group)
    found = []
    for variant, flaky_groups in by_variant.items():
        failures = sum(g.failures for g in flaky_groups)
        executions = failures + sum(g.passes for g in flaky_groups)
        if executions < min_executions:
            continue
        low, high = wilson_interval(failures, executions, confidence)
        seen = [g.last_seen for g in flaky_groups if g.last_seen is not None]
        found.append(FlakyTest(
            nodeid=nodeids[variant], variant_id=variant, score=failures / executions, low=low,
            high=high, executions=executions, failures=failures, passes=executions - failures,
            evidence="; ".join(_evidence(g) for g in sorted(flaky_groups, key=_recency)),
            git_shas=sorted({g.sha for g in flaky_groups if g.sha}), last_seen=max(seen, default=None),
            runs=sum(len(g.runs) for g in flaky_groups)))
    return sorted(found, key=lambda t: (-t.low, -t.score, -t.executions, t.nodeid, t.variant_id))


def _recency(group: _Group) -> float:
    return -group.last_seen.timestamp() if group.last_seen else 0.0


def _evidence(group: _Group) -> str:
    """Why this group counts as flaky, in words: reruns, runs of one sha, or plain counts."""
    parts: list[str] = []
    rerun_runs = [run for run, rows in group.runs.items() if _rerun_passed(rows)]
    if len(rerun_runs) == 1:
        parts.append(f"rerun passed after failing in run {rerun_runs[0]}")
    elif rerun_runs:
        shown = ", ".join(rerun_runs[:3]) + (", …" if len(rerun_runs) > 3 else "")
        parts.append(f"reruns passed after failing in {len(rerun_runs)} runs ({shown})")
    if group.sha and len(group.runs) > 1:
        failed_runs = sum(_run_failed(rows) for rows in group.runs.values())
        if 0 < failed_runs < len(group.runs):
            parts.append(f"{failed_runs} of {len(group.runs)} runs of sha {group.sha[:12]} failed")
    if not parts:
        where = f"of sha {group.sha[:12]}" if group.sha else f"in run {next(iter(group.runs))}"
        executions = group.failures + group.passes
        parts.append(f"{group.failures} of {executions} executions {where} failed")
    return "; ".join(parts)


def _attempt(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("attempt") or 1)
    except (TypeError, ValueError):
        return 1


def _rerun_passed(rows: list[Mapping[str, Any]]) -> bool:
    """A pass the runner marked flaky, or a pass at a later attempt than a failure of the run."""
    failed_attempts = [_attempt(r) for r in rows if str(r.get("outcome")) in FAILURE_OUTCOMES]
    if not failed_attempts:
        return False
    first_failure = min(failed_attempts)
    return any(str(r.get("outcome")) in PASS_OUTCOMES and (bool(r.get("flaky")) or _attempt(r) > first_failure)
               for r in rows)


def _run_failed(rows: list[Mapping[str, Any]]) -> bool:
    """Whether the run's final verdict on the variant was a failure (rows marked ``final``, else
    the last attempt)."""
    final = [r for r in rows if r.get("final")]
    if not final:
        last = max(_attempt(r) for r in rows)
        final = [r for r in rows if _attempt(r) == last]
    return any(str(r.get("outcome")) in FAILURE_OUTCOMES for r in final)
