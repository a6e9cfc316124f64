"""An example testfleet plugin: one module of ``@hookimpl`` functions, named by the entry point
``example`` of the group ``testfleet`` (see pyproject.toml)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testfleet.plugins import ReporterSpec, SourceSpec, hookimpl

__all__ = ["ResultLog", "powers_of_two"]

RESULTS_ENV = "TESTFLEET_EXAMPLE_RESULTS"
"""The file the result listener appends to (no listener when unset)."""


def powers_of_two(ctx: Any) -> Iterator[int]:
    """2^k within the rule's and the dimension's bounds, nearest to the current value first
    (ties: the smaller), then the off-by-one values around each. Needs no randomness."""
    lo = ctx.lo if ctx.lo is not None else 1
    hi = ctx.hi if ctx.hi is not None else 2**20
    base = ctx.base()
    centre = math.log2(base) if isinstance(base, (int, float)) and base > 0 else 0.0
    powers = sorted((2**k for k in range(63) if lo <= 2**k <= hi),
                    key=lambda p: (abs(math.log2(p) - centre), p))
    yield from powers
    for p in powers:
        yield p - 1
        yield p + 1


class LoadProbe:
    """The machine's 1-minute load average (a telemetry probe: ``read()`` -> {metric: value})."""

    def read(self) -> dict[str, float]:
        return {"load1": os.getloadavg()[0]}


def write_csv(path: str, run: Any, outcome: Any, store: Any = None) -> Path:
    """One row per result: nodeid, outcome, duration, attempt, worker, variant id."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["run_id", "nodeid", "outcome", "duration", "attempt", "worker", "variant_id"])
        for result in outcome.results:
            out.writerow([run.run_id, result.nodeid, str(result.outcome), f"{result.duration:.6f}",
                          result.attempt, result.worker, result.variant_id])
    return target


class ResultLog:
    """A result listener: each result as one JSON line, appended as it is recorded."""

    def __init__(self, path: str, run_id: str) -> None:
        self.path, self.run_id = Path(path), run_id

    def on_result(self, result: Any, done: int, total: int) -> None:
        line = {"run_id": self.run_id, "nodeid": result.nodeid, "outcome": str(result.outcome),
                "variant_id": result.variant_id, "attempt": result.attempt, "done": done}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


@hookimpl
def testfleet_add_mutation_operators() -> dict[str, Any]:
    return {"powers_of_two": powers_of_two}


@hookimpl
def testfleet_add_telemetry_sources() -> list[SourceSpec]:
    return [SourceSpec("example", LoadProbe, description="the 1-minute load average")]


@hookimpl
def testfleet_add_trigger_metrics() -> dict[str, tuple[str, str]]:
    return {"loadavg": ("plugin.example.load1", "max")}


@hookimpl
def testfleet_add_reporters() -> list[ReporterSpec]:
    return [ReporterSpec("csv", write_csv, description="one CSV row per result")]


@hookimpl
def testfleet_run_listener(run: Any) -> ResultLog | None:
    path = os.environ.get(RESULTS_ENV)
    return ResultLog(path, run.run_id) if path else None
