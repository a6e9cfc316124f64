"""The explorer's ruleset: following edits of the file during a run, and the account of every
rule that the summary shows and the run stores (one ``rule`` event per rule).

The coordinator evaluates each rule's trigger on every explorable execution's telemetry, as the
worker's mutation engine did (same summary, same duration, same expression), so the account
says how often a trigger was evaluated and held, with the values it read, without a word more
on the wire. With the proposals the workers sent back (origin ``rule:NAME``) and the outcomes of
the ones that ran, it says what each rule proposed and found; a rule that never fired, or whose
proposals never ran, says why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from testfleet.errors import UsageError

__all__ = ["RuleAccount", "RuleLedger", "RulesetFollower"]


class RulesetFollower:
    """The ruleset file of an explorer, re-read when it changes (a mixin of the Explorer)."""

    ruleset_path: str | None
    ruleset: Any
    ruleset_versions: list[str]
    _ruleset_stamp: tuple[float, int] | None
    _checked_at: float
    _ruleset_sent: str | None

    def reload_ruleset(self, *, force: bool = False) -> bool:
        """Read the ruleset again if its file changed (checked at most twice a second): an edit
        during a run applies to the proposals made after it. A file that became invalid keeps
        the last good version."""
        if self.ruleset_path is None:
            return False
        now = time.monotonic()
        if not force and now - self._checked_at < 0.5:
            return False
        self._checked_at = now
        from testfleet.mutation.rules import load_ruleset

        try:
            stat = os.stat(self.ruleset_path)
        except OSError:
            return False
        stamp = (stat.st_mtime, stat.st_size)
        if not force and stamp == self._ruleset_stamp:
            return False
        self._ruleset_stamp = stamp
        try:
            ruleset = load_ruleset(self.ruleset_path)
        except UsageError:
            if force:
                raise
            return False
        changed = self.ruleset is None or ruleset.version != self.ruleset.version
        self.ruleset = ruleset
        if changed:
            self.ruleset_versions.append(ruleset.version)
        return changed

    def ruleset_updates(self) -> list[tuple[str, dict[str, Any]]]:
        """The ruleset versions the workers have not been sent yet: ``(key, document)``."""
        if self.ruleset is None or self.ruleset_path is None or self._ruleset_sent == self.ruleset.version:
            return []
        self._ruleset_sent = self.ruleset.version
        return [(self.ruleset_path, self.ruleset.to_dict())]

    def ruleset_keys(self) -> tuple[str, ...]:
        """The keys of the rulesets a worker's engine applies (the ruleset's path)."""
        return (self.ruleset_path,) if self.ruleset is not None and self.ruleset_path else ()

    def rulesets(self) -> list[tuple[str, dict[str, Any]]]:
        """Every ruleset's current version (for a worker that just joined)."""
        return [(key, self.ruleset.to_dict()) for key in self.ruleset_keys()]


@dataclass
class RuleAccount:
    """One rule over the run."""

    evaluated: int = 0  # explorable executions of a case it applies to, trigger checked
    held: int = 0  # of those, the trigger held (no trigger: always)
    seen: dict[str, list[float]] = field(default_factory=dict)  # name -> [min, max] read
    seen_held: dict[str, list[float]] = field(default_factory=dict)  # the same, when it held
    missing: dict[str, int] = field(default_factory=dict)  # name -> evaluations it was absent
    proposed: int = 0  # proposals workers sent back
    executions: int = 0  # of its proposals that ran
    failures: int = 0
    new_failures: int = 0
    found: list[str] = field(default_factory=list)  # first message line of each new failure


def _widen(ranges: dict[str, list[float]], values: Mapping[str, float | None]) -> None:
    for name, value in values.items():
        if value is None:
            continue
        span = ranges.setdefault(name, [value, value])
        span[0], span[1] = min(span[0], value), max(span[1], value)


class RuleLedger:
    """Every rule of the ruleset, and what it did (see the module's docstring)."""

    def __init__(self) -> None:
        self.accounts: dict[str, RuleAccount] = {}

    def account(self, name: str) -> RuleAccount:
        return self.accounts.setdefault(name, RuleAccount())

    def evaluate(self, ruleset: Any, nodeid: str, dimensions: Iterable[str],
                 telemetry: Mapping[str, Any] | None, duration: float | None) -> None:
        """One explorable execution of ``nodeid``: check each rule that applies to it."""
        if ruleset is None:
            return
        names = set(dimensions)
        for rule in ruleset.for_case(nodeid):
            if rule.target_parameter not in names:
                continue
            acc = self.account(rule.mutation_name)
            acc.evaluated += 1
            values = rule.trigger.values(telemetry, duration) if rule.trigger else {}
            _widen(acc.seen, values)
            for name, value in values.items():
                if value is None:
                    acc.missing[name] = acc.missing.get(name, 0) + 1
            if rule.triggered(telemetry, duration):
                acc.held += 1
                _widen(acc.seen_held, values)

    def proposed(self, name: str) -> None:
        self.account(name).proposed += 1

    def ran(self, name: str, failed: bool, new_failure: str | None) -> None:
        acc = self.account(name)
        acc.executions += 1
        acc.failures += int(failed)
        if new_failure is not None:
            acc.new_failures += 1
            acc.found.append(new_failure)

    def report(self, ruleset: Any, spaces: Mapping[str, Iterable[str]]) -> dict[str, dict[str, Any]]:
        """Every rule of ``ruleset`` with its account and, when it found nothing, why
        (``spaces``: each explorable case's nodeid -> its parameters)."""
        if ruleset is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for rule in ruleset:
            acc = self.accounts.get(rule.mutation_name, RuleAccount())
            entry = {"trigger": rule.trigger_condition, "target": rule.target_parameter,
                     "evaluated": acc.evaluated, "held": acc.held,
                     "values_seen": {k: _span(v) for k, v in sorted(acc.seen.items())},
                     "values_when_held": {k: _span(v) for k, v in sorted(acc.seen_held.items())},
                     "proposed": acc.proposed, "executions": acc.executions,
                     "failures": acc.failures, "new_failures": acc.new_failures,
                     "found": list(acc.found)}
            why = _why(rule, acc, spaces)
            if why:
                entry["why"] = why
            out[rule.mutation_name] = entry
        return out


def _span(values: list[float]) -> str:
    low, high = values
    return f"{low:.4g}" if low == high else f"{low:.4g}..{high:.4g}"


def _why(rule: Any, acc: RuleAccount, spaces: Mapping[str, Iterable[str]]) -> str | None:
    """Why a rule found nothing (None when it found a failure)."""
    if acc.new_failures:
        return None
    if not rule.enabled:
        return "disabled in the ruleset"
    applies = [nodeid for nodeid in spaces if rule.applies(nodeid)]
    if not applies:
        return f"applies_to {list(rule.applies_to)} matches no explorable test"
    if not any(rule.target_parameter in set(spaces[n]) for n in applies):
        params = sorted({p for n in applies for p in spaces[n]})
        return (f"target_parameter {rule.target_parameter!r} is not a parameter of the tests it "
                f"applies to (they have {', '.join(params)})")
    if not acc.evaluated:
        return "no execution of a test it applies to came back"
    if not acc.held:
        absent = [name for name, n in sorted(acc.missing.items()) if n == acc.evaluated]
        if absent:
            return (f"its trigger never held: {', '.join(absent)} was never measured in "
                    f"{acc.evaluated} executions (telemetry off, or no SUT instance to watch)")
        seen = ", ".join(f"{k} {_span(v)}" for k, v in sorted(acc.seen.items()))
        return f"its trigger {rule.trigger_condition!r} never held in {acc.evaluated} executions ({seen})"
    if not acc.proposed:
        return (f"its trigger held {acc.held} times, but every value it proposes equals the current "
                f"one, lies outside the space or ran already, or the case's budget was spent")
    if not acc.executions:
        return (f"its {acc.proposed} proposals never ran: the other sources' yield ranked higher "
                f"until the budget was spent")
    return f"its {acc.executions} executions found no new failure"
