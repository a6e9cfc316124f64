"""Failure injection, ``testfleet run --chaos PROFILE|SCHEDULE.yaml``.

* :mod:`.profiles`: ``mild``, ``moderate``, ``severe`` as data, drawn from the run's seed;
* :mod:`.schedule`: a YAML schedule (validated; a bad one is exit 4 naming the file and key);
* :mod:`.injector`: carries faults out beside the coordinator's loop, each one an event;
* :mod:`.proxy`: the TCP proxy with toxics in front of each SUT instance;
* :mod:`.agent`: the worker's side (its proxy, memory orders).
* :mod:`.blame`: which failures an injected network error caused (judged infrastructure errors).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.execution.chaos.agent import ENV_CHAOS_DIR, ENV_CHAOS_SEED
from testfleet.execution.chaos.profiles import PROFILES, profile_schedule
from testfleet.execution.chaos.schedule import load_schedule

__all__ = ["PROFILES", "ChaosPlan", "plan_chaos"]


@dataclass
class ChaosPlan:
    """What a run injects (``stream``), and the folder its coordinator and workers share."""

    stream: object
    seed: int
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="testfleet-chaos-")))

    def env(self) -> dict[str, str]:
        """The workers' environment: where to find their orders, and the proxies' seed."""
        return {ENV_CHAOS_DIR: str(self.folder), ENV_CHAOS_SEED: str(self.seed)}

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def plan_chaos(value: str, seed: int, *, has_sut: bool, cwd: Path | None = None) -> ChaosPlan:
    """A profile name, or the path of a schedule file (SettingsError when it is invalid)."""
    if value in PROFILES:
        return ChaosPlan(profile_schedule(value, seed, has_sut=has_sut), seed)
    path = Path(value)
    if not path.is_absolute() and cwd is not None:
        path = cwd / path
    return ChaosPlan(load_schedule(path), seed)
