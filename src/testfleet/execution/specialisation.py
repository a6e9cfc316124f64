"""Specialisation: an instance under stress where exploration finds failures gets more of the fleet.

Each worker runs its own SUT instance. From what reaches the coordinator with each result (the
samples of the instance's process tree, ``sut.cpu_percent`` and ``sut.rss_mb``, the result's
duration, its outcome and anomalies) this module keeps a window of the last ``window`` results of
every instance and scores it:

* **stress** in [0, 1], the largest of: CPU saturation (mean ``sut.cpu_percent`` over
  ``cpu_saturation``), memory growth (``sut.rss_mb`` growth across the window over
  ``mem_growth``) and latency (the window's median duration against the fleet's, 1 at
  ``latency_ratio`` times it);
* **yield** in [0, 1]: the share of the window's explored executions that failed or were
  anomalous;
* **score** = stress x yield: stress alone (a heavy but healthy configuration) or failures alone
  (a plain bug) earn nothing; both together do.

:func:`decide` is the policy, pure and deterministic (ties go by instance name): an instance is
*granted* once its score stayed at or above ``grant`` for ``confirm`` of its results in a row, at
most ``max_instances`` at once, the highest score first; a granted one is *released* once its score
stayed below ``release`` (< ``grant``: hysteresis) for ``confirm`` results, or once it is idle (no
result for ``idle`` evaluations, one evaluation per result of the fleet) or gone. After a change an
instance is left alone for ``cooldown`` evaluations. What a grant means on this machine is the actuator's
(:mod:`testfleet.execution.specialise_local`) and the coordinator's
(:mod:`testfleet.execution.coordinator.specialising`).

``[tool.testfleet.specialise]`` is :class:`SpecialiseSettings`.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Decision", "InstanceWindow", "Observation", "PolicyState", "SpecialiseSettings", "aim", "decide",
           "release_all", "score"]


class SpecialiseSettings(BaseModel):
    """``[tool.testfleet.specialise]``: resources and explored work for stressed, failing instances."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool | None = Field(default=None, description="specialise (default: during --explore only)")
    window: int = Field(default=8, ge=2, le=1000, description="last results of an instance its score reads")
    grant: float = Field(default=0.3, gt=0, le=1, description="score at or above which an instance is granted")
    release: float = Field(default=0.1, ge=0, lt=1, description="score below which a granted instance gives "
                           "its resources back (below grant: hysteresis)")
    confirm: int = Field(default=2, ge=1, le=100, description="results of an instance in a row its score "
                         "must hold before a grant or a release")
    cooldown: int = Field(default=4, ge=0, le=1000, description="evaluations an instance is left alone after "
                          "a change")
    idle: int = Field(default=16, ge=1, le=10000, description="evaluations without a result after which a "
                      "granted instance is idle and released")
    max_instances: int = Field(default=1, ge=1, le=1000, description="instances granted at once")
    share: float = Field(default=0.75, ge=0, le=1, description="share of explored variants aimed at a granted "
                         "instance's SUT configuration")
    nice: int = Field(default=5, ge=0, le=19, description="niceness the other instances are lowered by")
    affinity: bool = Field(default=True, description="give a granted instance a CPU of its own (sched_setaffinity)")
    cgroup: bool = Field(default=True, description="use cgroup v2 CPU weights where the cgroup is writable")
    ray_cpus: float = Field(default=1.0, gt=0, le=1024, description="CPUs the worker actor a grant starts on Ray "
                            "reserves (Ray takes fractions up to 1, whole numbers above)")
    cpu_saturation: float = Field(default=80.0, gt=0, le=100000, description="sut.cpu_percent counted as saturated")
    mem_growth: float = Field(default=0.5, gt=0, le=1000, description="relative sut.rss_mb growth over a window "
                              "counted as full memory stress")
    latency_ratio: float = Field(default=2.0, gt=1, le=1000, description="median duration over the fleet's counted "
                                 "as full latency stress")

    @field_validator("ray_cpus")
    @classmethod
    def _ray_takes_whole_cpus_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"Ray reserves a fraction of a CPU only up to 1: {value:g} must be a whole number")
        return value

    @model_validator(mode="after")
    def _release_below_grant(self) -> SpecialiseSettings:
        if self.release >= self.grant:
            raise ValueError(f"release ({self.release}) must be below grant ({self.grant})")
        return self

    def active(self, explore: str | None) -> bool:
        """Whether the run specialises: while it explores, unless ``enabled = false`` (on by default:
        bench/collaboration.py --part allocation found a load-dependent defect in 5.4x fewer
        explored executions with it (median over 5 seeds); nothing is granted without both stress and failures)."""
        return self.enabled is not False and explore is not None


@dataclass(frozen=True, slots=True)
class Observation:
    """One final result of an instance, as the score reads it."""

    duration: float  # of the test's call (without a SUT restart in its setup)
    explored: bool
    bad: bool  # failed, or anomalous
    cpu: float | None = None  # mean sut.cpu_percent of the samples that came with it
    rss: float | None = None  # last sut.rss_mb sample that came with it
    config: tuple[tuple[str, Any], ...] = ()  # the SUT configuration it ran with (flat, sorted)
    worker: str = ""  # the worker whose instance ran it


@dataclass
class InstanceWindow:
    """The last ``size`` observations of one instance."""

    size: int
    rows: deque[Observation] = field(default_factory=deque)

    def add(self, row: Observation) -> None:
        self.rows.append(row)
        while len(self.rows) > self.size:
            self.rows.popleft()


@dataclass(frozen=True, slots=True)
class Score:
    stress: float
    yield_: float
    cpu: float
    mem: float
    latency: float

    @property
    def value(self) -> float:
        return self.stress * self.yield_

    def describe(self) -> str:
        parts = [f"cpu {self.cpu:.2f}", f"memory {self.mem:.2f}", f"latency {self.latency:.2f}"]
        return f"score {self.value:.2f} = stress {self.stress:.2f} ({', '.join(parts)}) x yield {self.yield_:.2f}"


def score(window: Iterable[Observation], fleet_median: float | None, settings: SpecialiseSettings) -> Score:
    """Stress times yield of one instance's window (see the module's docstring)."""
    rows = list(window)
    if not rows:
        return Score(0.0, 0.0, 0.0, 0.0, 0.0)
    cpus = [r.cpu for r in rows if r.cpu is not None]
    cpu = min(1.0, max(0.0, statistics.fmean(cpus) / settings.cpu_saturation)) if cpus else 0.0
    rss = [r.rss for r in rows if r.rss is not None and r.rss > 0]
    mem = min(1.0, max(0.0, (rss[-1] - rss[0]) / rss[0] / settings.mem_growth)) if len(rss) >= 2 else 0.0
    latency = 0.0
    if fleet_median is not None and fleet_median > 0:
        ratio = statistics.median(r.duration for r in rows) / fleet_median
        latency = min(1.0, max(0.0, (ratio - 1.0) / (settings.latency_ratio - 1.0)))
    explored = [r for r in rows if r.explored]
    yield_ = sum(r.bad for r in explored) / len(explored) if explored else 0.0
    return Score(max(cpu, mem, latency), yield_, cpu, mem, latency)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # "grant" or "release"
    instance: str
    reason: str
    score: float


@dataclass
class PolicyState:
    """What the policy remembers between evaluations."""

    granted: dict[str, int] = field(default_factory=dict)  # instance -> evaluation it was granted at
    above: dict[str, int] = field(default_factory=dict)  # evaluations in a row at or above grant
    below: dict[str, int] = field(default_factory=dict)  # evaluations in a row below release
    changed: dict[str, int] = field(default_factory=dict)  # instance -> evaluation of its last change
    last_seen: dict[str, int] = field(default_factory=dict)  # instance -> evaluation of its last result
    evaluation: int = 0


def decide(state: PolicyState, scores: Mapping[str, Score], fresh: Iterable[str], live: Iterable[str],
           settings: SpecialiseSettings) -> list[Decision]:
    """One evaluation: ``scores`` of the instances with a window, ``fresh`` those with a result
    since the last evaluation, ``live`` those still running. Updates ``state``; returns the
    changes, releases first (a release frees a place for a grant). An instance is named by the
    caller: the coordinator names one by its SUT configuration (see coordinator.specialising)."""
    state.evaluation += 1
    now = state.evaluation
    live_set = set(live)
    fresh_set = set(fresh)
    for name in fresh_set:
        state.last_seen[name] = now
    for name, s in scores.items():
        if name not in fresh_set:
            continue  # a score moves only with a new result: "in a row" counts the instance's results
        state.above[name] = state.above.get(name, 0) + 1 if s.value >= settings.grant else 0
        state.below[name] = state.below.get(name, 0) + 1 if s.value < settings.release else 0
    out: list[Decision] = []

    def resting(name: str) -> bool:
        return now - state.changed.get(name, -10**9) <= settings.cooldown

    for name in sorted(state.granted):
        current = scores.get(name)
        value = current.value if current is not None else 0.0
        why = None
        if name not in live_set:
            why = "the instance is gone"
        elif now - state.last_seen.get(name, now) >= settings.idle:
            why = f"idle: no result for {now - state.last_seen.get(name, now)} evaluations"
        elif not resting(name) and state.below.get(name, 0) >= settings.confirm and current is not None:
            why = f"{current.describe()} stayed below release {settings.release} for {state.below[name]} evaluations"
        if why is not None:
            del state.granted[name]
            state.changed[name] = now
            out.append(Decision("release", name, why, value))
    candidates = sorted((n for n, s in scores.items() if n not in state.granted and n in live_set
                         and not resting(n) and state.above.get(n, 0) >= settings.confirm
                         and now - state.last_seen.get(n, -10**9) < settings.idle),
                        key=lambda n: (-scores[n].value, n))
    for name in candidates[:max(0, settings.max_instances - len(state.granted))]:
        state.granted[name] = now
        state.changed[name] = now
        out.append(Decision("grant", name, f"{scores[name].describe()} held at or above grant {settings.grant} "
                            f"for {state.above[name]} evaluations", scores[name].value))
    return out


def aim(params: Mapping[str, Any], target: Mapping[str, Any], dimensions: Iterable[str], draw: float,
        share: float, allowed: Callable[[dict[str, Any]], bool] = lambda _p: True,
        prefix: str = "sut.") -> dict[str, Any]:
    """An explored variant's ``params`` aimed at the SUT configuration ``target`` (its keys
    without ``prefix``): every ``prefix`` key of ``target`` the case explores is laid over, when
    ``draw`` (a seeded uniform draw) falls under ``share`` and the result is ``allowed`` (keeps the
    space's constraints); otherwise ``params`` unchanged."""
    dims = set(dimensions)
    overlay = {prefix + k: v for k, v in target.items() if prefix + k in dims}
    if not overlay or draw >= share:
        return dict(params)
    aimed = {**params, **overlay}
    return aimed if allowed(aimed) else dict(params)


def release_all(state: PolicyState, scores: Mapping[str, Score], reason: str) -> list[Decision]:
    """Every granted instance gives its resources back (exploration is over, the run stops)."""
    state.evaluation += 1
    out = [Decision("release", name, reason, scores[name].value if name in scores else 0.0)
           for name in sorted(state.granted)]
    for decision in out:
        state.changed[decision.instance] = state.evaluation
    state.granted.clear()
    return out
