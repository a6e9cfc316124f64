"""Mutation rulesets: which parameter of which cases to vary, how, and when.

A ruleset file (YAML, or JSON when its suffix is ``.json``) is a list of rules,
``{name?, version?, description?, rules: [...]}``, or one rule on its own (a mapping with rule
fields and no ``rules``, as the source document shows one). A rule has the source document's form::

    - mutation_name: InputSizeVariation        # required, unique in the file
      target_parameter: payload_size           # required; dotted for nested (cache.size)
      variation_type: range                    # range set scale jitter shuffle boundary grow drop
      min_value: 100                           # numbers, or with units: 64MB, 250ms
      max_value: 1000
      step_size: 100
      trigger_condition: "CPU_load > 80%"      # optional; absent = always
      priority: 2                              # default 1, higher first
      applies_to: ["tests/test_orders.py::*"]  # nodeid globs, default every case

``values`` belongs to set rules, ``factor`` to scale and grow (default 2), ``amount`` to jitter
(absolute, ``250ms``, or ``"20%"`` of the current value). For scale, jitter and grow,
``min_value``/``max_value`` bound the proposals.

The file is checked against the published JSON Schema (``ruleset.schema.json``, shipped with
the package; ``testfleet rules schema`` prints it), then for what a schema cannot say (min <=
max, triggers that parse and read known metrics, unique names). Every problem is one
:class:`RulesetError` naming the file, the rule (1-based, with its name), the field and, in
YAML, the line. A ruleset's ``version`` is the one written in the file or else a hash of its
canonical JSON, so any edit gives a new version.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from testfleet.errors import ConfigError, SpaceError
from testfleet.mutation.errors import RulesetError
from testfleet.mutation.schema import HINTS as _HINTS
from testfleet.mutation.schema import VARIATION_TYPES, check_schema, schema, short
from testfleet.mutation.schema import Where as _Where
from testfleet.mutation.triggers import Trigger
from testfleet.space.dimensions import parse_duration, parse_size

__all__ = ["VARIATION_TYPES", "Rule", "Ruleset", "RulesetError", "load_ruleset", "loads_ruleset",
           "ruleset_from_data", "schema"]

T = TypeVar("T")

#: Fields that only some variation types read.
_ONLY_FOR = {"values": ("set",), "factor": ("scale", "grow"), "amount": ("jitter",),
             "step_size": ("range", "boundary")}

@dataclass(frozen=True)
class Rule:
    """One mutation rule, normalised: quantities as numbers (bytes, seconds), defaults filled."""

    mutation_name: str
    target_parameter: str
    variation_type: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    step_size: float | int | None = None
    values: tuple[Any, ...] | None = None
    factor: float | None = None
    amount: float | None = None
    relative_amount: bool = False  # amount is a percentage of the current value
    trigger: Trigger | None = None
    priority: float = 1
    applies_to: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""
    index: int = field(default=0, compare=False)  # 1-based position in its file

    @property
    def trigger_condition(self) -> str | None:
        return self.trigger.text if self.trigger else None

    @property
    def origin(self) -> str:
        """The origin a variant proposed by this rule records."""
        return f"rule:{self.mutation_name}"

    def applies(self, nodeid: str) -> bool:
        """Whether the rule applies to the case ``nodeid`` (no globs: every case)."""
        return not self.applies_to or any(fnmatch.fnmatchcase(nodeid, g) for g in self.applies_to)

    def triggered(self, summary: Mapping[str, Any] | None, duration: float | None = None) -> bool:
        """Whether the trigger holds for this telemetry summary (no trigger: always)."""
        return self.trigger is None or self.trigger.holds(summary, duration)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mutation_name": self.mutation_name,
                               "target_parameter": self.target_parameter,
                               "variation_type": self.variation_type}
        for key in ("min_value", "max_value", "step_size", "factor"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.values is not None:
            out["values"] = list(self.values)
        if self.amount is not None:
            out["amount"] = f"{self.amount:g}%" if self.relative_amount else self.amount
        if self.trigger is not None:
            out["trigger_condition"] = self.trigger.text
        out["priority"] = self.priority
        if self.applies_to:
            out["applies_to"] = list(self.applies_to)
        if not self.enabled:
            out["enabled"] = False
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Ruleset:
    """Rules in file order, with the ruleset's name, version and source file."""

    rules: tuple[Rule, ...]
    version: str
    name: str | None = None
    source: str | None = None
    description: str = ""

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, mutation_name: str) -> Rule | None:
        return next((r for r in self.rules if r.mutation_name == mutation_name), None)

    def for_case(self, nodeid: str) -> list[Rule]:
        """Enabled rules that apply to ``nodeid``, highest priority first (then file order)."""
        return sorted((r for r in self.rules if r.enabled and r.applies(nodeid)),
                      key=lambda r: (-r.priority, r.index))

    def fired(self, nodeid: str, summary: Mapping[str, Any] | None,
              duration: float | None = None) -> list[Rule]:
        """The rules of :meth:`for_case` whose trigger holds for this execution's telemetry."""
        return [r for r in self.for_case(nodeid) if r.triggered(summary, duration)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        out["version"] = self.version
        if self.description:
            out["description"] = self.description
        out["rules"] = [r.to_dict() for r in self.rules]
        return out


# ---------------------------------------------------------------- loading

def load_ruleset(path: str | Path) -> Ruleset:
    """Read and check a ruleset file (``.json`` as JSON, anything else as YAML)."""
    from testfleet.configs.formats import read_text

    path = Path(path)
    source = str(path)
    try:
        text = read_text(path)
    except ConfigError as exc:
        raise RulesetError(exc.message, source=source, place=exc.place, expected=exc.expected) from None
    return loads_ruleset(text, "json" if path.suffix.lower() == ".json" else "yaml", source=source)


def loads_ruleset(text: str, fmt: str = "yaml", *, source: str = "<string>") -> Ruleset:
    """A ruleset from YAML or JSON text; syntax errors name the line and column."""
    from testfleet.configs.formats import loads

    if fmt not in ("yaml", "json"):
        raise RulesetError(f"unknown ruleset format {fmt!r}", source=source,
                           expected="yaml or json")
    try:
        data = loads(text, fmt, source=source)
    except ConfigError as exc:
        raise RulesetError(exc.message, source=source, place=exc.place,
                           expected=exc.expected or f"a {fmt.upper()} ruleset") from None
    if data is None:
        raise RulesetError("the ruleset is empty", source=source, expected="a list of rules")
    return ruleset_from_data(data, source=source, text=text if fmt == "yaml" else None)


def ruleset_from_data(data: Any, *, source: str = "<data>", text: str | None = None) -> Ruleset:
    """A ruleset from already-parsed data; ``text`` (YAML) lets errors name lines."""
    single = is_single_rule(data)
    where = _Where([data] if single else data, source, text, single=single)
    check_schema([data] if single else data, where)
    rules_data = data if isinstance(data, list) else [data] if single else data["rules"]
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, spec in enumerate(rules_data):
        rule = _rule(spec, i, where)
        if rule.mutation_name in seen:
            raise RulesetError(f"duplicate mutation_name {rule.mutation_name!r} (rule "
                               f"{seen[rule.mutation_name] + 1} has it too)", source=source,
                               place=where.place(i, "mutation_name"),
                               expected=_HINTS["mutation_name"])
        seen[rule.mutation_name] = i
        rules.append(rule)
    meta = data if isinstance(data, dict) and not single else {}
    version = meta.get("version")
    return Ruleset(rules=tuple(rules), version=str(version) if version is not None
                   else content_version(data), name=meta.get("name"), source=source,
                   description=meta.get("description", ""))


def is_single_rule(data: Any) -> bool:
    """Whether ``data`` is one rule written on its own, as the source document shows it (a
    mapping with rule fields and no ``rules`` list), rather than a ruleset."""
    return isinstance(data, dict) and "rules" not in data and any(
        key in data for key in ("mutation_name", "target_parameter", "variation_type"))


def content_version(data: Any) -> str:
    """A stable hash of the ruleset's canonical JSON (12 hex digits)."""
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               default=str)
    except (TypeError, ValueError):  # keys of mixed types inside set values: fall back to repr
        canonical = repr(data)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _finite(value: T, where: _Where, i: int, fld: str) -> T:
    if isinstance(value, float) and not math.isfinite(value):
        raise RulesetError(f"{value} is not a finite number", source=where.source,
                           place=where.place(i, fld), expected=_HINTS[fld])
    return value


def _quantity(value: Any, where: _Where, i: int, fld: str) -> float | int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        number: float | int = value  # the schema allows a number or a text with a unit here
        return _finite(number, where, i, fld)
    try:
        return parse_size(value)
    except SpaceError:
        pass
    try:
        number = parse_duration(value)
    except SpaceError:
        raise RulesetError(f"{value!r} has an unknown unit", source=where.source,
                           place=where.place(i, fld),
                           expected="a size unit (B, KB, MB, GB, TB) or a duration unit "
                                    "(ns, us, ms, s, m, h, d)") from None
    return _finite(number, where, i, fld)


def _rule(spec: dict[str, Any], i: int, where: _Where) -> Rule:
    def fail(fld: str, message: str, expected: str | None = None) -> RulesetError:
        return RulesetError(message, source=where.source, place=where.place(i, fld),
                            expected=expected or _HINTS.get(fld))

    kind = spec["variation_type"]
    name = spec["mutation_name"]
    if not name.strip():
        raise fail("mutation_name", "the name is blank")
    for fld, kinds in _ONLY_FOR.items():
        if fld in spec and kind not in kinds:
            raise fail(fld, f"{fld} does not apply to a {kind} rule",
                       f"{fld} only on {' or '.join(kinds)} rules")
    lo = _quantity(spec.get("min_value"), where, i, "min_value")
    hi = _quantity(spec.get("max_value"), where, i, "max_value")
    step = _quantity(spec.get("step_size"), where, i, "step_size")
    if lo is not None and hi is not None and lo > hi:
        raise fail("max_value", f"must be >= min_value {spec['min_value']}, not "
                                f"{spec['max_value']}", "max_value >= min_value")
    if step is not None and step <= 0:
        raise fail("step_size", f"must be > 0, not {spec['step_size']}")
    if kind == "range" and step is None:
        assert lo is not None and hi is not None  # the schema requires both on a range rule
        step = 1 if isinstance(lo, int) and isinstance(hi, int) else ((hi - lo) / 10 or 1.0)
    values = spec.get("values")
    if values is not None:
        for j, value in enumerate(values):
            if any(type(v) is type(value) and v == value for v in values[:j]):
                raise fail("values", f"{short(value)} appears twice", "distinct values")
    factor = _finite(spec.get("factor"), where, i, "factor")
    if factor is None and kind in ("scale", "grow"):
        factor = 2.0
    if factor is not None and factor == 1:
        raise fail("factor", "a factor of 1 changes nothing")
    amount, relative = spec.get("amount"), False
    if isinstance(amount, str) and amount.strip().endswith("%"):
        amount, relative = float(amount.strip()[:-1]), True
    else:
        amount = _quantity(amount, where, i, "amount")
    if amount is not None and amount <= 0:
        raise fail("amount", f"must be > 0, not {spec['amount']}")
    trigger = None
    if "trigger_condition" in spec:
        trigger = Trigger.parse(spec["trigger_condition"], source=where.source,
                                place=where.place(i, "trigger_condition"))
    priority = _finite(spec.get("priority", 1), where, i, "priority")
    return Rule(mutation_name=name, target_parameter=spec["target_parameter"],
                variation_type=kind, min_value=lo, max_value=hi, step_size=step,
                values=tuple(values) if values is not None else None,
                factor=float(factor) if factor is not None else None,
                amount=float(amount) if amount is not None else None, relative_amount=relative,
                trigger=trigger, priority=priority, applies_to=tuple(spec.get("applies_to", ())),
                enabled=spec.get("enabled", True), description=spec.get("description", ""),
                index=i + 1)
