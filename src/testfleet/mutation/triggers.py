"""Trigger conditions: when a rule may fire, as an expression over an execution's telemetry.

A trigger is parsed once with the safe expression language of
:mod:`testfleet.space.expressions` (never ``eval``): ``CPU_load > 80%``,
``latency_p95_ms > 200 and rss_mb > 500``, ``sut.rss_mb.p95 >= 256 or duration > 2s``. A number
written ``80%`` is the number itself, compared with a metric that counts percent.

Names resolve through :data:`ALIASES` and the aliases plugins add (the hook
``testfleet_add_trigger_metrics``) or are full metric names (``sut.*``, ``worker.*``,
``system.*``, ``http.*``, ``custom.*``, ``prom.*``; ``plugin.*`` from plugins' telemetry
sources) with an optional statistic suffix
(``.mean .max .p95 .delta .count``); without one, the statistic is the one the anomaly monitor
judges the metric on (``max`` for memory and counts, ``mean`` for CPU, ``p95`` for latencies),
else ``mean``. Unknown names are an error when the ruleset loads. A metric absent from the
summary makes the trigger false: a rule never fires on telemetry it did not see.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testfleet.errors import SpaceError
from testfleet.mutation.errors import RulesetError
from testfleet.plugins import hookimpl
from testfleet.space.expressions import Expression, parse
from testfleet.telemetry.monitor import WATCHED

__all__ = ["ALIASES", "NAMESPACES", "STATS", "Trigger", "resolve"]

#: The execution's own duration (seconds), not a telemetry metric.
DURATION = "duration"

#: alias -> (metric, statistic); ``duration`` is the execution's duration in seconds.
ALIASES: dict[str, tuple[str, str]] = {
    "CPU_load": ("sut.cpu_percent", "mean"),
    "cpu_load": ("sut.cpu_percent", "mean"),
    "cpu": ("sut.cpu_percent", "mean"),
    "rss_mb": ("sut.rss_mb", "max"),
    "memory_mb": ("sut.rss_mb", "max"),
    "latency_ms": ("http.latency_ms", "mean"),
    "latency_p95_ms": ("http.latency_ms", "p95"),
    "fds": ("sut.fds", "max"),
    "system_cpu": ("system.cpu_percent", "mean"),
    "duration": (DURATION, ""),
    "duration_s": (DURATION, ""),
}
#: The statistics a telemetry summary holds per metric.
STATS = ("mean", "max", "p95", "delta", "count")
#: First segments of full metric names.
NAMESPACES = ("sut", "worker", "system", "http", "custom", "prom", "plugin")


@hookimpl
def testfleet_add_trigger_metrics() -> dict[str, tuple[str, str]]:
    return dict(ALIASES)


def _aliases() -> dict[str, tuple[str, str]]:
    from testfleet.plugins import registry

    return registry().trigger_metrics()


def _default_stat(metric: str) -> str:
    for pattern, stat, _floor in WATCHED:
        if fnmatch.fnmatchcase(metric, pattern):
            return stat
    return "mean"


def resolve(name: str) -> tuple[str, str] | None:
    """``(metric, statistic)`` a trigger name reads, or None when the name is unknown."""
    aliases = _aliases()
    if name in aliases:
        return aliases[name]
    parts = name.split(".")
    if len(parts) < 2 or parts[0] not in NAMESPACES or not all(parts):
        return None
    if parts[-1] in STATS and len(parts) >= 3:
        return ".".join(parts[:-1]), parts[-1]
    return name, _default_stat(name)


def _known() -> str:
    return (", ".join(_aliases()) + "; or a metric " + " | ".join(f"{n}.*" for n in NAMESPACES)
            + " with an optional ." + " | .".join(STATS))


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger condition and the (metric, statistic) each of its names reads."""

    text: str
    expression: Expression = field(repr=False, compare=False)
    reads: Mapping[str, tuple[str, str]] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: Any, *, source: str | None = None, place: str | None = None) -> Trigger:
        """Parse ``text``; a :class:`RulesetError` naming ``source``/``place`` otherwise."""
        if not isinstance(text, str) or not text.strip():
            raise RulesetError(f"empty or non-text trigger {text!r}", source=source, place=place,
                               expected="an expression such as 'CPU_load > 80%'")
        try:
            expression = parse(text)
        except SpaceError as exc:
            where = f"{place}, {exc.place}" if place and exc.place else (place or exc.place)
            raise RulesetError(f"bad trigger: {exc.message}", source=source, place=where,
                               expected=exc.expected) from None
        reads: dict[str, tuple[str, str]] = {}
        for name in sorted(expression.names):
            found = resolve(name)
            if found is None:
                raise RulesetError(f"unknown name {name!r} in trigger {text!r}", source=source,
                                   place=place, expected=_known())
            reads[name] = found
        return cls(text=text, expression=expression, reads=reads)

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    def values(self, summary: Mapping[str, Any] | None, duration: float | None = None
               ) -> dict[str, float | None]:
        """What each name of the trigger reads in ``summary`` (None when absent): the
        provenance stored with a variant the rule proposed."""
        out: dict[str, float | None] = {}
        for name, (metric, stat) in self.reads.items():
            if metric == DURATION:
                value: Any = duration
            else:
                stats = (summary or {}).get(metric)
                value = stats.get(stat) if isinstance(stats, Mapping) else None
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
            out[name] = float(value) if ok else None
        return out

    def holds(self, summary: Mapping[str, Any] | None, duration: float | None = None) -> bool:
        """True when every metric the trigger reads is present and the condition holds."""
        seen = self.values(summary, duration)
        if any(value is None for value in seen.values()):
            return False
        return self.expression.holds(seen)

    def __str__(self) -> str:
        return self.text
