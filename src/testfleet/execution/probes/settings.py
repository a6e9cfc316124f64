"""``[tool.testfleet.helpers]``: which helpers attach to a SUT on an anomaly, and their limits.

::

    [tool.testfleet.helpers]
    enabled = ["profile", "threads"]   # also "memory"; default: these two when py-spy is installed
    duration = 5.0                     # seconds a helper stays attached per anomaly
    max_overhead = 0.05                # share of one CPU all attached helpers may use together
    max_count = 3                      # attachments in one run (0: helpers off)
    rate = 100                         # profiler samples per second (default: from max_overhead)
    metrics = ["sut.", "prom.", "duration"]  # anomalies on metrics starting so trigger helpers
    top = 25                           # allocations kept in a memory artefact

Helpers are off in a run without ``[tool.testfleet.sut]``: there is no process to attach to.
The ``memory`` helper for a Python SUT needs the SUT started with testfleet's sitecustomize on
its ``PYTHONPATH`` (tracemalloc runs from the start, which costs the SUT from 30% on
allocation-heavy code), so it is never on by default.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HelperName = Literal["profile", "memory", "threads"]
HELPERS: tuple[HelperName, ...] = ("profile", "memory", "threads")
#: py-spy's CPU per sample of a small Python stack with --nonblocking, measured here at 0.11-0.22
#: ms; taken high so that the rate chosen from an overhead budget stays inside it
SAMPLE_CPU_SECONDS = 0.0004
MAX_RATE = 100  # py-spy's own default: a finer flame graph says nothing more in a few seconds
MIN_RATE = 5


class HelperSettings(BaseModel):
    """``[tool.testfleet.helpers]`` (see the module doc)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: list[HelperName] | None = Field(default=None, description="helpers attached on an anomaly: "
                                             "profile, memory, threads (default: profile and threads "
                                             "when py-spy is installed)")
    duration: float = Field(default=5.0, gt=0, le=600, description="seconds a helper stays attached")
    max_overhead: float = Field(default=0.05, gt=0, le=1, description="share of one CPU the attached "
                                "helpers may use together; a helper over its share is stopped")
    max_count: int = Field(default=3, ge=0, description="attachments in one run (0: helpers off)")
    rate: int | None = Field(default=None, ge=1, le=1000, description="profiler samples per second "
                             "(default: the most max_overhead allows, at most 100)")
    metrics: list[str] = Field(default_factory=lambda: ["sut.", "prom.", "duration"],
                               description="anomalies on metrics starting with one of these attach helpers")
    top: int = Field(default=25, ge=1, le=1000, description="allocations (or mappings) kept in a memory artefact")

    @field_validator("enabled")
    @classmethod
    def _no_repeats(cls, value: list[HelperName] | None) -> list[HelperName] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names a helper twice; expected each of profile, memory, threads at most once")
        return value

    def helpers(self, has_sut: bool) -> tuple[HelperName, ...]:
        """The helpers this run attaches, in a fixed order (empty: helpers off)."""
        if not has_sut or self.max_count == 0:
            return ()
        if self.enabled is not None:
            return tuple(h for h in HELPERS if h in self.enabled)
        return ("profile", "threads") if pyspy_path() is not None else ()

    def triggers(self, metric: str) -> bool:
        return any(metric.startswith(prefix) for prefix in self.metrics)


def pyspy_path() -> str | None:
    """The py-spy executable: on PATH, or next to this Python (a virtual environment not
    activated); None when it is not installed (``pip install 'testfleet[profile]'``)."""
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else None


def sampling_rate(settings: HelperSettings, attached: int = 1) -> int:
    """Profiler samples per second: the given ``rate``, else the most this helper's share of
    the overhead budget (``attached`` helpers share it) pays for, within MIN_RATE..MAX_RATE."""
    if settings.rate is not None:
        return settings.rate
    share = settings.max_overhead / max(1, attached)
    return max(MIN_RATE, min(MAX_RATE, int(share / SAMPLE_CPU_SECONDS)))


def cpu_share(settings: HelperSettings, attached: int) -> float:
    """The share of one CPU one of ``attached`` helpers may use before it is stopped."""
    return settings.max_overhead / max(1, attached)


class Limits:
    """How many attachments the run has left, and which SUT processes have one now: one at a
    time per process (a second profiler on the same process measures the first), ``max_count``
    in all."""

    def __init__(self, max_count: int) -> None:
        self.left = max_count
        self.busy: set[int] = set()

    def refusal(self, pid: int) -> str | None:
        """Why a helper may not attach to ``pid`` now (None: it may)."""
        if pid in self.busy:
            return f"helpers are already attached to pid {pid}"
        if self.left <= 0:
            return "max_count attachments reached for this run"
        return None

    def take(self, pid: int) -> None:
        self.left -= 1
        self.busy.add(pid)

    def release(self, pid: int) -> None:
        self.busy.discard(pid)


@dataclass(frozen=True)
class HelperPlan:
    """What a run's coordinator attaches on an anomaly, and where the artefacts go."""

    settings: HelperSettings
    helpers: tuple[HelperName, ...]
    folder: Path  # <store folder>/artefacts/<run id>


def helper_plan(settings: HelperSettings, has_sut: bool, store: str | Path, run_id: str) -> HelperPlan | None:
    """The run's helpers (None: off), their artefacts kept next to the store, by run."""
    helpers = settings.helpers(has_sut)
    if not helpers:
        return None
    return HelperPlan(settings, helpers, Path(store).expanduser().resolve().parent / "artefacts" / run_id)
