"""Behaviour specifications: for configurations matching ``given``, cases matching ``when`` must
end as ``then`` says.

A spec file (YAML or JSON)::

    specs:
      - id: cache-off-still-serves
        version: 2
        description: with the cache off every order test still passes, within half a second
        given: "cache.mode == 'off' and server.threads >= 4"   # the space-constraint language
        when: {nodeid: ["tests/test_orders.py::*"], markers: [orders]}
        then: {outcome: passes, max_duration: 0.5}
      - id: huge-payload-is-rejected
        version: 1
        given: "payload_size > 1MB"
        when: "tests/test_api.py::test_upload*"          # a string is one nodeid pattern
        then: {outcome: fails, message: "413|too large"}  # a regex searched in the failure

``then.outcome``: ``passes`` (passed), ``fails`` (failed), ``errors`` (error, crashed or timeout),
``skipped``, ``xfails``, or an outcome word itself. ``max_duration`` / ``min_duration`` bound
seconds; ``metrics: {name: {max: 200}}`` bounds a telemetry metric of the execution. ``when``
selects cases by nodeid glob patterns (any may match) and markers (all required). Every error
names the file, the spec and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.errors import SpaceError
# defined in testfleet.errors; re-exported from its old home
from testfleet.errors import SpecError as SpecError
from testfleet.space.expressions import Expression, parse
from testfleet.patterns import PatternError, compile_pattern


OUTCOME_WORDS: dict[str, frozenset[str]] = {
    "passes": frozenset({"passed"}),
    "fails": frozenset({"failed"}),
    "errors": frozenset({"error", "crashed", "timeout"}),
    "skipped": frozenset({"skipped"}),
    "xfails": frozenset({"xfailed"}),
    **{word: frozenset({word}) for word in ("passed", "failed", "error", "crashed", "timeout",
                                            "xfailed", "xpassed")},
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_VERSION = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18}){0,3}")


@dataclass(frozen=True)
class Bound:
    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + \
            ([f"<= {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class When:
    nodeids: tuple[str, ...] = ()   # glob patterns; empty = every case
    markers: tuple[str, ...] = ()   # all required

    def describe(self) -> str:
        parts = list(self.nodeids) + [f"@{m}" for m in self.markers]
        return ", ".join(parts) or "every case"


@dataclass(frozen=True)
class Then:
    outcome: str | None = None
    message: str | None = None                      # regex searched in message + traceback
    duration: Bound | None = None
    metrics: tuple[tuple[str, Bound], ...] = ()

    @property
    def outcomes(self) -> frozenset[str] | None:
        return None if self.outcome is None else OUTCOME_WORDS[self.outcome]

    def describe(self) -> str:
        parts = [self.outcome] if self.outcome else []
        if self.message:
            parts.append(f"message ~ /{self.message}/")
        if self.duration:
            parts.append(f"duration {self.duration.describe()} s")
        parts += [f"{name} {bound.describe()}" for name, bound in self.metrics]
        return ", ".join(parts)


@dataclass(frozen=True)
class Spec:
    id: str
    version: str
    then: Then
    given: Expression | None = None
    when: When = field(default_factory=When)
    description: str = ""
    body: dict[str, Any] = field(default_factory=dict, compare=False)   # as written
    source: str | None = None

    @property
    def digest(self) -> str:
        """Hash of what the spec says (its body), to notice an edit under the same version."""
        blob = json.dumps(self.body, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def _fail(message: str, source: str | None, place: str, expected: str) -> SpecError:
    return SpecError(message, source=source, place=place, expected=expected)


def _strings(value: Any, source: str | None, place: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _fail(f"{value!r} is not a string or a list of strings", source, place,
                "a pattern or a list of patterns")


def _bound(value: Any, source: str | None, place: str, *, seconds: bool = False) -> Bound:
    """A bound of a metric, or of a duration (``seconds``: a number of seconds, 0 or more)."""
    def fits(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            return False
        return not seconds or 0 <= v < math.inf

    if fits(value):
        return Bound(max=float(value))
    if isinstance(value, Mapping) and value and set(value) <= {"min", "max"} and all(
            fits(v) for v in value.values()):
        bound = Bound(min=value.get("min"), max=value.get("max"))
        if bound.min is not None and bound.max is not None and bound.min > bound.max:
            raise _fail(f"min {bound.min} is above max {bound.max}", source, place,
                        "min <= max")
        return bound
    if seconds:
        raise _fail(f"bad bound {value!r} for a duration", source, place,
                    "seconds, 0 or more: a number (a maximum) or {min: .., max: ..}")
    raise _fail(f"bad bound {value!r}", source, place, "a number (a maximum) or {min: .., max: ..}")


def spec_from_dict(data: Any, *, source: str | None = None, place: str = "spec") -> Spec:
    """One spec from its YAML/JSON form; SpecError naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise _fail(f"a spec is a mapping, not {type(data).__name__}", source, place,
                    "id, version, given, when, then")
    unknown = set(data) - {"id", "version", "description", "given", "when", "then"}
    if unknown:
        raise _fail(f"unknown keys {', '.join(sorted(map(str, unknown)))}", source, place,
                    "id, version, description, given, when, then")
    spec_id = data.get("id")
    if not isinstance(spec_id, str) or not _ID.match(spec_id):
        raise _fail(f"id {spec_id!r} is missing or malformed", source, f"{place}.id",
                    "letters, digits, '_', '.', ':', '-'")
    place = f"{place} ({spec_id})"
    version = data.get("version", 1)
    if isinstance(version, bool) or not (
            (isinstance(version, int) and version >= 0)
            or (isinstance(version, str) and _VERSION.fullmatch(version))):
        raise _fail(f"version {version!r} is not a version number", source, f"{place}.version",
                    "a whole number such as 2, or dotted numbers such as '1.2'")
    given = None
    if data.get("given") is not None:
        try:
            given = parse(data["given"])
        except SpaceError as exc:
            raise _fail(exc.message, source, f"{place}.given" + (f", {exc.place}" if exc.place
                                                                  else ""),
                        exc.expected or "an expression") from None
    when = _when(data.get("when"), source, f"{place}.when")
    then = _then(data.get("then"), source, f"{place}.then")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail("description must be text", source, f"{place}.description", "a string")
    return Spec(spec_id, str(version), then, given, when, description, dict(data), source)


def _when(value: Any, source: str | None, place: str) -> When:
    if value is None:
        return When()
    if isinstance(value, (str, list)):
        return When(nodeids=_strings(value, source, place))
    if not isinstance(value, Mapping) or set(value) - {"nodeid", "nodeids", "markers", "marker"}:
        raise _fail(f"bad when {value!r}", source, place,
                    "a nodeid pattern, or {nodeid: [patterns], markers: [names]}")
    return When(_strings(value.get("nodeid", value.get("nodeids")), source, f"{place}.nodeid"),
                _strings(value.get("markers", value.get("marker")), source, f"{place}.markers"))


def _then(value: Any, source: str | None, place: str) -> Then:
    if isinstance(value, str):
        value = {"outcome": value}
    if not isinstance(value, Mapping) or not value:
        raise _fail("every spec needs a 'then'", source, place,
                    "an outcome (passes, fails, errors...) and/or bounds")
    unknown = set(value) - {"outcome", "message", "max_duration", "min_duration", "duration",
                            "metrics"}
    if unknown:
        raise _fail(f"unknown keys {', '.join(sorted(map(str, unknown)))}", source, place,
                    "outcome, message, max_duration, min_duration, metrics")
    outcome = value.get("outcome")
    if outcome is not None and outcome not in OUTCOME_WORDS:
        raise _fail(f"unknown outcome {outcome!r}", source, f"{place}.outcome",
                    " | ".join(OUTCOME_WORDS))
    message = value.get("message")
    if message is not None:
        try:
            compile_pattern(message)
        except PatternError as exc:
            raise _fail(f"bad message pattern {message!r}: {exc}", source, f"{place}.message",
                        "a regular expression") from None
    duration = None
    if "duration" in value:
        duration = _bound(value["duration"], source, f"{place}.duration", seconds=True)
    elif "max_duration" in value or "min_duration" in value:
        for key in ("max_duration", "min_duration"):
            if key in value:  # each is named where it is wrong
                _bound(value[key], source, f"{place}.{key}", seconds=True)
        duration = _bound({k.split("_")[0]: v for k, v in value.items()
                           if k in ("max_duration", "min_duration")}, source, place,
                          seconds=True)
    metrics = value.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise _fail("metrics must be a mapping", source, f"{place}.metrics",
                    "{metric_name: {max: 200}}")
    bounds = tuple((str(k), _bound(v, source, f"{place}.metrics.{k}"))
                   for k, v in metrics.items())
    if outcome is None and message is None and duration is None and not bounds:
        raise _fail("'then' says nothing to check", source, place,
                    "an outcome, a message pattern, a duration or metric bound")
    return Then(outcome, message, duration, bounds)


def specs_from_data(data: Any, *, source: str | None = None) -> list[Spec]:
    """All specs of a file's data: ``{"specs": [...]}`` or a bare list."""
    items = data.get("specs") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and set(data) - {"specs"}:
        raise _fail(f"unknown top-level keys {', '.join(sorted(map(str, set(data) - {'specs'})))}",
                    source, "top level", "specs: [...]")
    if not isinstance(items, list) or not items:
        raise _fail("no specs", source, "specs", "a list of specs under 'specs:'")
    specs = [spec_from_dict(item, source=source, place=f"specs[{i}]")
             for i, item in enumerate(items)]
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.id in seen:
            raise _fail(f"spec id {spec.id!r} appears twice (specs[{seen[spec.id]}] and "
                        f"specs[{i}])", source, f"specs[{i}].id", "unique ids")
        seen[spec.id] = i
    return specs


def load_specs(path: str | Path) -> list[Spec]:
    """Specs from a YAML or JSON file."""
    from testfleet.configs.formats import load

    document = load(path)
    return specs_from_data(document.data, source=str(path))


def specs(items: Sequence[Mapping[str, Any]]) -> list[Spec]:
    """The Python API: the same dicts a YAML file holds."""
    return specs_from_data(list(items), source="<python>")
