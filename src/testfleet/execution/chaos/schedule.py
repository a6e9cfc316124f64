"""A chaos schedule: which faults to inject, when, into what, for how long.

A schedule file is YAML (or JSON), either a list of faults or a mapping with a ``faults`` list::

    faults:
      - at: 5                  # seconds after the run's tests start being dispatched
        fault: kill_worker
        target: any            # any, or a worker id or seat such as gw1 (its SUT instance has its name)
      - every: 10              # repeated: first at `start` (default: `every`), then every 10 s
        count: 3               # at most this many times (default: until the run ends)
        fault: latency
        target: gw0
        duration: 4            # seconds the fault lasts (stop/pause/network/memory faults)
        params: {ms: 200, jitter_ms: 50}
      - after_tests: 120       # once 120 tests have their final result (not a time: two runs of
        fault: kill_sut        # the same file get it at the same point of their progress)
        target: gw1            # a seat: gw1, or the worker that replaced it

Each entry is validated (:class:`FaultSpec`); an invalid file raises one
:class:`~testfleet.errors.SettingsError` naming the file and the key (``faults[1].duration``), which
``testfleet run`` turns into exit 4. The timed entries expand into one ordered stream of
:class:`Injection` (``Schedule.upcoming``), the same for the same file; the entries keyed on the
run's progress (``after_tests``) are a finite list apart (``Schedule.progress``), which the
injector fires as final results come in.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from testfleet.errors import SettingsError

#: what each fault does (see injector.py); ``duration`` matters for the ones in LASTING
FAULTS = ("kill_worker", "kill_actor", "stop_worker", "kill_sut", "pause_sut", "latency", "bandwidth",
          "reset_peer", "timeout", "http_error", "fill_memory", "kill_node")
FaultName = Literal["kill_worker", "kill_actor", "stop_worker", "kill_sut", "pause_sut", "latency",
                    "bandwidth", "reset_peer", "timeout", "http_error", "fill_memory", "kill_node"]
LASTING = frozenset({"stop_worker", "pause_sut", "latency", "bandwidth", "reset_peer", "timeout",
                     "http_error", "fill_memory"})
#: faults that act on the SUT's network path, through the proxy in front of the instance
NETWORK = frozenset({"latency", "bandwidth", "reset_peer", "timeout", "http_error"})
#: faults that need a SUT instance (the network ones and the process ones)
NEEDS_SUT = NETWORK | {"kill_sut", "pause_sut"}
#: the parameters each fault takes, with their bounds: (low, high)
PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "latency": {"ms": (0, 60_000), "jitter_ms": (0, 60_000)},
    "bandwidth": {"kbps": (1, 10_000_000)},
    "reset_peer": {"share": (0, 1)},
    "http_error": {"share": (0, 1), "status": (100, 599)},
    "fill_memory": {"mib": (1, 4096)},
}
MAX_DURATION = 3600.0


class FaultSpec(BaseModel):
    """One entry of a schedule: a fault, when (``at`` or ``every``), where, how long, how hard."""

    model_config = ConfigDict(extra="forbid")

    fault: FaultName
    at: float | None = Field(None, ge=0, description="seconds after dispatch starts")
    after_tests: int | None = Field(None, ge=0, description="fires once, when this many tests have a final result")
    every: float | None = Field(None, gt=0, description="period in seconds of a repeated fault")
    start: float | None = Field(None, ge=0, description="first time of a repeated fault (default: every)")
    count: int | None = Field(None, ge=1, description="times a repeated fault is injected at most")
    target: str = Field("any", min_length=1, pattern=r"^(any|[A-Za-z0-9_.:-]+)$")
    duration: float = Field(0.0, ge=0, le=MAX_DURATION)
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _when_and_params(self) -> FaultSpec:
        if sum(when is not None for when in (self.at, self.every, self.after_tests)) != 1:
            raise ValueError("give exactly one of 'at' (once), 'every' (repeated) or 'after_tests' "
                             "(once, after that many final results)")
        if self.every is None and (self.start is not None or self.count is not None):
            raise ValueError("'start' and 'count' go with 'every', not with 'at' or 'after_tests'")
        if self.fault in LASTING and self.duration <= 0:
            raise ValueError(f"{self.fault} lasts a while: give 'duration' in seconds (> 0)")
        allowed = PARAMS.get(self.fault, {})
        for name, value in self.params.items():
            if name not in allowed:
                known = ", ".join(allowed) or "none"
                raise ValueError(f"{self.fault} has no parameter {name!r} (it takes: {known})")
            low, high = allowed[name]
            if not low <= value <= high:
                raise ValueError(f"params.{name} must be within {low:g}..{high:g}, got {value:g}")
        return self

    def times(self) -> Iterator[float]:
        """When this entry fires, in seconds after dispatch starts, in order (maybe forever);
        nothing for an entry keyed on progress (``after_tests``)."""
        if self.after_tests is not None:
            return
        if self.at is not None:
            yield self.at
            return
        assert self.every is not None
        first = self.every if self.start is None else self.start
        n = 0
        while self.count is None or n < self.count:
            yield first + n * self.every
            n += 1


@dataclass(frozen=True, order=True)
class Injection:
    """One fault to inject at ``at`` seconds after dispatch starts (ordered by time), or, when
    ``after_tests`` is set, once that many tests have a final result (``at`` is then 0)."""

    at: float
    seq: int
    fault: str = field(compare=False)
    target: str = field(compare=False)
    duration: float = field(compare=False, default=0.0)
    params: dict[str, float] = field(compare=False, default_factory=dict)
    entry: int = field(compare=False, default=-1)  # its entry in the schedule file (-1: a profile's)
    after_tests: int | None = field(compare=False, default=None)


class Schedule:
    """An ordered, possibly endless stream of injections."""

    def __init__(self, specs: list[FaultSpec], name: str = "schedule") -> None:
        self.specs = specs
        self.name = name

    def upcoming(self) -> Iterator[Injection]:
        """Every injection in time order (ties: in the file's order)."""
        def stream(i: int, spec: FaultSpec) -> Iterator[tuple[float, int, FaultSpec]]:
            return ((t, i, spec) for t in spec.times())

        streams = [stream(i, spec) for i, spec in enumerate(self.specs)]
        for seq, (at, i, spec) in enumerate(heapq.merge(*streams, key=lambda x: (x[0], x[1]))):
            yield Injection(at, seq, spec.fault, spec.target, spec.duration, dict(spec.params), entry=i)

    def progress(self) -> list[Injection]:
        """The entries keyed on progress, in the order they fire (ties: in the file's order)."""
        keyed = sorted((spec.after_tests, i, spec) for i, spec in enumerate(self.specs)
                       if spec.after_tests is not None)
        return [Injection(0.0, seq, spec.fault, spec.target, spec.duration, dict(spec.params), entry=i,
                          after_tests=after)
                for seq, (after, i, spec) in enumerate(keyed)]


def _place(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_schedule(data: Any, source: str) -> Schedule:
    """A validated schedule from parsed YAML; SettingsError naming ``source`` and the key."""
    if isinstance(data, dict):
        unknown = [key for key in data if key != "faults"]
        if unknown:
            raise SettingsError(f"unknown key {unknown[0]!r}", source=source, place=str(unknown[0]) or "''",
                                expected="a mapping with only 'faults', or a list of faults")
        data = data.get("faults")
        prefix: tuple[int | str, ...] = ("faults",)
    else:
        prefix = ()
    if not isinstance(data, list) or not data:
        raise SettingsError("a chaos schedule needs at least one fault", source=source,
                            place=_place(prefix) or "(top level)", expected="a non-empty list of faults")
    specs: list[FaultSpec] = []
    for position, entry in enumerate(data):
        where = (*prefix, position)
        if not isinstance(entry, dict):
            raise SettingsError(f"got {type(entry).__name__}", source=source, place=_place(where),
                                expected="a mapping with fault, at or every, target, duration, params")
        try:
            specs.append(FaultSpec.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            place = _place((*where, *error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            raise SettingsError(message, source=source, place=place) from None
    return Schedule(specs, name=Path(source).name)


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate a schedule file (SettingsError naming the file and key, else)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read the chaos schedule: {exc.strerror}", source=source,
                            place="--chaos", expected="mild, moderate, severe or a YAML schedule") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"line {mark.line + 1}" if mark is not None else None
        raise SettingsError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source, place=place) from None
    return parse_schedule(data, source)
