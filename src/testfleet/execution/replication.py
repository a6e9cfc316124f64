"""Edge-case replication: what the replays of a failure say about it.

When a variant fails (or is anomalous) on one instance, the coordinator replays it at once
(:mod:`testfleet.execution.coordinator.replicating`): the same variant and SUT configuration on
every other worker, the same worker under other SUT configurations (the failing configuration's
nearest neighbours, one key changed each, and the baseline configuration), and the same worker and
configuration again. One factor changes at a time, so each replay answers one question.

:func:`classify` reads the outcomes, each execution a *cell* (its environment, its
configuration):

* **flaky** — one cell saw both outcomes: nothing that was varied explains the failure (rate and
  95 % Wilson interval over every execution);
* **deterministic** — every execution failed, wherever and however configured;
* **configuration-specific** — on one environment, a configuration change turns the failure
  into a pass; ``keys``: the configuration keys of the closest such pairs (one key apart for a
  neighbour);
* **environment-specific** — under one configuration, another environment passes; ``keys``: the
  facts that differ between the failing and the passing environments (worker id, host,
  Python...). When both an environment and a configuration change matter (it fails only on this
  worker *and* under this configuration) the class is environment-specific and ``keys`` names
  the configuration keys as well.

Pure: executions in, :class:`Verdict` out. :class:`ReplicateSettings` is ``[tool.testfleet.replicate]``.
What replication tells the fleet's bus: :class:`ReplayQueued` (a ``replay`` event, the replay's
provenance) and :class:`FailureClassified` (a ``replication`` event, the class and its evidence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testfleet.execution.bus import BusMessage, stored_as

DETERMINISTIC = "deterministic"
CONFIG_SPECIFIC = "configuration-specific"
ENVIRONMENT_SPECIFIC = "environment-specific"
FLAKY = "flaky"
CLASSES = (DETERMINISTIC, CONFIG_SPECIFIC, ENVIRONMENT_SPECIFIC, FLAKY)
#: replays a time-budgeted ``--explore`` may spend when ``budget`` is not set
DEFAULT_TIME_BUDGET = 60


class ReplicateSettings(BaseModel):
    """``[tool.testfleet.replicate]``: replays of a failure on other instances and configurations."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool | None = Field(default=None, description="replicate failures (default: during --explore only)")
    budget: int | None = Field(default=None, ge=0, description="replays the run may spend (default: `share` of an "
                               f"--explore count, {DEFAULT_TIME_BUDGET} for a time budget)")
    share: float = Field(default=0.25, gt=0, le=1, description="the share of an --explore count replays may take")
    repeats: int = Field(default=3, ge=0, description="replays on the same worker and configuration (flakiness)")
    neighbours: int = Field(default=4, ge=0, description="neighbouring SUT configurations tried (one key changed each)")

    def resolved_budget(self, explore: str | None) -> int:
        """The replays this run may spend (0: replication is off)."""
        on = self.enabled if self.enabled is not None else (explore is not None or self.budget is not None)
        if not on:
            return 0
        if self.budget is not None:
            return self.budget
        if explore is None:
            return DEFAULT_TIME_BUDGET
        from testfleet.execution.proposals import Budget

        count = Budget.parse(explore).executions
        return DEFAULT_TIME_BUDGET if count is None else max(1, int(count * self.share))


@dataclass(frozen=True)
class Execution:
    """One execution of the replicated variant: did it fail (or was it anomalous), where, how configured."""

    bad: bool
    env: Mapping[str, str]  # the worker's facts: worker id, host, python...
    config: Mapping[str, Any] = field(default_factory=dict)  # the SUT configuration, flattened


@dataclass(frozen=True)
class Verdict:
    kind: str
    keys: list[str]
    differences: dict[str, dict[str, list[Any]]]  # key -> {"failing": values, "passing": values}
    rate: float
    interval: tuple[float, float]
    executions: int
    failures: int

    def describe(self) -> str:
        if self.kind == FLAKY:
            return (f"flaky: failed {self.failures}/{self.executions} "
                    f"({self.rate:.0%}, 95% CI {self.interval[0]:.0%}-{self.interval[1]:.0%})")
        if self.kind == DETERMINISTIC:
            return f"deterministic: failed all {self.executions} executions"
        shown = "; ".join(f"{k}: fails with {_values(d['failing'])}, passes with {_values(d['passing'])}"
                          for k, d in self.differences.items())
        return f"{self.kind}: {shown or ', '.join(self.keys)} ({self.failures}/{self.executions} failed)"


_MISSING = object()


def _values(values: list[Any]) -> str:
    return "/".join(str(v) for v in values)


def _key(mapping: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in mapping.items()))


def _differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


def classify(original: Execution, replays: Sequence[Execution]) -> Verdict:
    """The class of a failure from its original execution and its replays (see the module doc)."""
    from testfleet.analysis.flaky import wilson_interval  # the run's flakiness uses the same interval

    executions = [original, *replays]
    n, failures = len(executions), sum(e.bad for e in executions)
    rate = failures / n
    interval = wilson_interval(failures, n)

    def verdict(kind: str, keys: list[str] | None = None,
                differences: dict[str, dict[str, list[Any]]] | None = None) -> Verdict:
        return Verdict(kind, keys or [], differences or {}, rate, interval, n, failures)

    cells: dict[tuple[Any, Any], set[bool]] = {}
    for e in executions:
        cells.setdefault((_key(e.env), _key(e.config)), set()).add(e.bad)
    if any(len(seen) > 1 for seen in cells.values()):
        return verdict(FLAKY)
    if failures == n:
        return verdict(DETERMINISTIC)
    bad = [e for e in executions if e.bad]
    good = [e for e in executions if not e.bad]
    # controlled pairs: one factor held, the other changed, the outcome changed with it
    config_pairs = [(b, g) for b in bad for g in good if _key(b.env) == _key(g.env)]
    env_pairs = [(b, g) for b in bad for g in good if _key(b.config) == _key(g.config)]
    config_keys, config_diff = _closest(config_pairs, "config")
    env_keys, env_diff = _closest(env_pairs, "env")
    if config_keys and not env_keys:
        return verdict(CONFIG_SPECIFIC, config_keys, config_diff)
    if env_keys:
        return verdict(ENVIRONMENT_SPECIFIC, env_keys + config_keys, {**env_diff, **config_diff})
    # no controlled pair: the outcome changed only where both factors changed at once
    every, every_diff = _closest([(b, g) for b in bad for g in good], "env")
    if every:
        return verdict(ENVIRONMENT_SPECIFIC, every, every_diff)
    every, every_diff = _closest([(b, g) for b in bad for g in good], "config")
    return verdict(CONFIG_SPECIFIC, every, every_diff)


def _closest(pairs: list[tuple[Execution, Execution]], side: str) -> tuple[list[str], dict[str, dict[str, list[Any]]]]:
    """The keys that differ in the pairs that differ least (a neighbour: one key), those common
    to all of them when there are any, with the values each key took in the failing and the
    passing executions of those pairs."""
    diffs = [(b, g, _differing(getattr(b, side), getattr(g, side))) for b, g in pairs]
    diffs = [d for d in diffs if d[2]]
    if not diffs:
        return [], {}
    least = min(len(d[2]) for d in diffs)
    closest = [d for d in diffs if len(d[2]) == least]
    # a key every closest pair changed explains them all; the others each explain one pair (a
    # failing gw1 run that also differs in `cache` does not make `cache` a suspect where gw0's
    # pair kept it), so they are named only when no key is common to every pair
    common = set.intersection(*(set(d[2]) for d in closest))
    keys: dict[str, dict[str, list[Any]]] = {}
    for b, g, differing in closest:
        for k in differing:
            if common and k not in common:
                continue
            entry = keys.setdefault(k, {"failing": [], "passing": []})
            for which, e in (("failing", b), ("passing", g)):
                value = getattr(e, side).get(k)
                if value not in entry[which]:
                    entry[which].append(value)
    ordered = {k: {which: sorted(values, key=repr) for which, values in keys[k].items()} for k in sorted(keys)}
    return sorted(keys), ordered


# -- where to replay -------------------------------------------------------------------------------
def neighbour_configs(space: Any, point: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` configurations next to ``point`` (``{"sut.<key>": value}``) in ``space``:
    each dimension changed alone to its nearest other level (its baseline value when that is
    not the current one), every constraint kept; then the baseline configuration itself."""
    names = [n for n in space.dimensions if n in point]
    baseline = {n: space.dimensions[n].baseline() for n in names}
    out: list[dict[str, Any]] = []
    for name in names:
        if len(out) >= limit:
            break
        value = _nearest_other(space.dimensions[name], point[name], baseline[name])
        if value is _MISSING:
            continue
        candidate = {**point, name: value}
        if not space.violations({**baseline, **candidate}) and candidate not in out:
            out.append(candidate)
    whole = {**point, **baseline}
    if whole != dict(point) and whole not in out and not space.violations(whole):
        out.append(whole)
    return out


def _nearest_other(dim: Any, value: Any, baseline: Any) -> Any:
    if baseline != value:
        return baseline
    candidates = [level.value for level in dim.levels() if level.value != value]
    if not candidates:
        return _MISSING
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool) and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) for c in candidates)
    if numeric:
        return min(candidates, key=lambda c: abs(c - value))
    return candidates[0]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested configuration as ``{"a.b": value}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# -- the messages on the bus ------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ReplayQueued(BusMessage):
    """A replay of a failing variant, pinned to ``worker`` (``subject``: its nodeid)."""

    topic = "replay"  # the event kind replays have always had: provenance readers select it
    action: str = "queue"
    case_id: str
    variant_id: str  # the replay's own variant (its values may differ from the failing one's)
    nodeid: str
    origin: str = "replay"
    parent_id: str  # the failing variant
    worker: str
    repeat: int  # n-th replay on the same worker and configuration (0: another factor changed)
    config: dict[str, Any]  # the SUT keys changed from the failing execution


@dataclass(frozen=True, kw_only=True)
class FailureClassified(BusMessage):
    """A failure's replays are back: its class and the evidence for it."""

    topic = "replication"
    action: str = "verdict"
    case_id: str
    variant_id: str
    nodeid: str
    verdict: str = stored_as("class")  # one of CLASSES
    keys: list[str]
    differences: dict[str, dict[str, list[Any]]]
    rate: float
    interval: list[float]
    executions: int
    failures: int
    trigger: str  # "failure" or "anomaly"
    original: dict[str, Any]  # {"worker", "config"} of the execution that failed
    replays: list[dict[str, Any]]
    dropped: int
    complete: bool


def verdict_lines(events: Sequence[Mapping[str, Any]], spent: int | None = None,
                  budget: int | None = None) -> list[str]:
    """The ``replication`` events of a run as text: one line per failure, its class and evidence
    (for the run summary, ``testfleet show`` and ``testfleet analyze``)."""
    if not events and not spent:
        return []
    head = f"replication: {len(events)} failure{'s' if len(events) != 1 else ''} classified"
    if spent is not None:
        head += f", {spent} replay{'s' if spent != 1 else ''}" + (f" of {budget}" if budget is not None else "")
    lines = [head]
    for event in events:
        text = str(event.get("message", "")).removeprefix(f"replicated {event.get('nodeid')}: ")
        replays = len(event.get("replays") or [])
        lines.append(f"  {str(event.get('class', '?')).upper():22} {event.get('nodeid')}: {text} "
                     f"[{replays} replay{'s' if replays != 1 else ''}"
                     + ("" if event.get("complete", True) else ", incomplete") + "]")
    return lines
