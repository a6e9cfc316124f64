"""``testfleet analyze --confirm N``: the one-factor follow-ups of ``--next``, run as randomised
experiments, and a verdict on each suspect.

Why an experiment. Analysis of what already ran can only point at suspects: the data were not
assigned at random (explored variants cluster around failures, the scheduler groups variants on
workers). An experiment can: for each proposal, the variant it is based on (arm ``base``) and
the same variant with the one parameter changed (arm ``changed``) each run ``REPLICATES`` times,
every run its own ``testfleet run`` of the case in the recorded run's root directory and seed,
the parameters passed as ``testfleet replay`` passes them (``TESTFLEET_REPLAY_PARAMS``), in an
order shuffled by the seed, so that drift over time (a warming cache, a filling disk) cannot
line up with an arm.

Verdict. The suspect rule predicts either a difference (undoing a condition of a failing
variant should make it pass; completing a passing one should make it fail) or no difference
(one value of a combination alone should not fail). One-sided Fisher exact test between the
arms in the predicted direction: *confirmed* at p <= ``ALPHA`` (with 3 replicates only a clean
separation reaches it, p = 0.05), *refuted* when the base arm reproduced its recorded outcome
and the changed arm behaved like it. A "no difference" prediction is confirmed when the changed
arm passes every time and refuted when it fails significantly more. Anything else (the base
arm did not reproduce: a flaky failure) is *inconclusive*. A case whose test does not take its
parameters from a space (``@testfleet.explore``, a scenario's params, the SUT configuration)
cannot be given other values: *not runnable*.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from testfleet.analysis.display import abbreviate, abbreviate_params, to_json
from testfleet.analysis.followups import FollowUp

REPLICATES = 3
ALPHA = 0.05
RUN_TIMEOUT = 600.0   # seconds one confirming run may take

#: runs one arm once: (nodeid, params) -> whether it failed, or None when the case did not take
#: the parameters (it ran other values)
Runner = Callable[[str, dict[str, Any]], bool | None]


@dataclass
class Confirmation:
    proposal: FollowUp
    nodeid: str
    base_failed_before: bool          # the recorded outcome of the variant the proposal changes
    base: list[bool] = field(default_factory=list)      # failed, per replicate
    changed: list[bool] = field(default_factory=list)
    verdict: str = "inconclusive"     # confirmed | refuted | inconclusive | not runnable
    p_value: float | None = None

    @property
    def text(self) -> str:
        p = self.proposal
        change = f"{p.changed}: {abbreviate(p.old)} -> {abbreviate(p.new)}"
        counts = (f"base failed {sum(self.base)}/{len(self.base)}, changed failed "
                  f"{sum(self.changed)}/{len(self.changed)}")
        tail = "" if self.p_value is None else f", one-sided Fisher p={self.p_value:.2g}"
        return f"{self.nodeid} {change} (expected {p.expect}): {counts}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "text": self.text, "nodeid": self.nodeid,
                "proposal": self.proposal.to_dict(), "base": self.base, "changed": self.changed,
                "base_failed_before": self.base_failed_before, "p_value": to_json(self.p_value),
                "params": abbreviate_params(self.proposal.params)}


def _greater(more: Sequence[bool], less: Sequence[bool]) -> float:
    """One-sided Fisher: does ``more`` fail more often than ``less``?"""
    table = [[sum(more), len(more) - sum(more)], [sum(less), len(less) - sum(less)]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def judge(c: Confirmation) -> Confirmation:
    """The verdict of one finished experiment (see the module docstring)."""
    differs = (c.proposal.expect == "pass") == c.base_failed_before
    reproduced = all(f == c.base_failed_before for f in c.base)
    if differs:
        high, low = (c.base, c.changed) if c.base_failed_before else (c.changed, c.base)
        c.p_value = _greater(high, low)
        if c.p_value <= ALPHA + 1e-9:     # 3 replicates: a clean split is exactly 1/20
            c.verdict = "confirmed"
        elif reproduced and all(f == c.base_failed_before for f in c.changed):
            c.verdict = "refuted"
        return c
    c.p_value = _greater(c.changed, c.base)
    if c.p_value <= ALPHA + 1e-9:
        c.verdict = "refuted"
    elif not any(c.changed) and not any(c.base):
        c.verdict = "confirmed"
    return c


def confirm(proposals: Sequence[tuple[FollowUp, str, bool]], runner: Runner, *,
            replicates: int = REPLICATES, seed: int = 0) -> list[Confirmation]:
    """Run every ``(proposal, nodeid, base failed before)`` as an experiment of ``replicates``
    runs per arm, all runs in one shuffled order, and judge each."""
    found = [Confirmation(p, nodeid, before) for p, nodeid, before in proposals]
    base_params = [_base_params(p) for p, _, _ in proposals]
    order = [(i, arm) for i in range(len(found)) for arm in ("base", "changed")
             for _ in range(replicates)]
    runnable = [True] * len(found)
    for k in np.random.default_rng(seed).permutation(len(order)):
        i, arm = order[int(k)]
        if not runnable[i]:
            continue
        params = base_params[i] if arm == "base" else found[i].proposal.params
        failed = runner(found[i].nodeid, dict(params))
        if failed is None:
            runnable[i] = False
            continue
        getattr(found[i], arm).append(failed)
    for c, ok in zip(found, runnable):
        if ok:
            judge(c)
        else:
            c.verdict = "not runnable"
    return found


def _base_params(p: FollowUp) -> dict[str, Any]:
    params = dict(p.params)
    if p.old is None:
        params.pop(p.changed, None)
    else:
        params[p.changed] = p.old
    return params


def fleet_runner(store: Path, rootdir: Path, seed: int, read: Callable[[Path, set[str]], tuple[
        set[str], list[tuple[dict[str, Any], bool]]]]) -> Runner:
    """A runner that runs ``testfleet run NODEID`` in ``rootdir`` with the run's seed, the
    parameters in ``TESTFLEET_REPLAY_PARAMS``, and reads back the new run's outcome with
    ``read(store, runs seen so far)`` -> (runs now, [(params, failed) of the new run's
    results])."""
    seen, _ = read(store, set())

    def run(nodeid: str, params: dict[str, Any]) -> bool | None:
        nonlocal seen
        env = dict(os.environ) | {"TESTFLEET_REPLAY_PARAMS": json.dumps(params, default=str)}
        subprocess.run([sys.executable, "-m", "testfleet", "run", nodeid, "--store", str(store),
                        "--workers", "1", "--seed", str(seed), "--no-ff", "-q"],
                       cwd=rootdir, env=env, capture_output=True, timeout=RUN_TIMEOUT, check=False)
        seen, results = read(store, seen)
        wanted = json.dumps(params, sort_keys=True, default=str)
        outcomes = [failed for got, failed in results
                    if json.dumps(got, sort_keys=True, default=str) == wanted]
        return outcomes[0] if outcomes else None

    return run
