"""The coordinator's side of a worker's configuration: the run's settings as one WorkerConfig.

The coordinator reads the settings once; every worker gets what it needs of them in reply to its
Hello (see :class:`~testfleet.execution.protocol.WorkerConfig`), so no worker reads the settings
file again nor takes configuration from its environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testfleet.execution.protocol import WorkerConfig


def worker_config(settings: Any, source: Path | None, *, seed: int, cwd: Path) -> WorkerConfig:
    """What every worker of this run is told (its worker count and rulesets are the
    orchestrator's to fill in)."""
    spec, space = sut_of(settings, source, cwd)
    return WorkerConfig(seed=seed, telemetry_interval=float(settings.telemetry_interval),
                        metrics_interval=float(settings.metrics_interval), sut=spec, sut_space=space)


def sut_of(settings: Any, source: Path | None, cwd: Path) -> tuple[Any, dict[str, Any] | None]:
    """``[tool.testfleet.sut]`` (a SutSpec whose commands run where the settings file is) and its
    ``config_space`` as exploration varies it (dimensions ``sut.<key>``, declared), each None
    when absent or unreadable: the instance reports a bad SUT table itself, when a test uses it."""
    try:
        spec = settings.sut_spec()
    except Exception:  # noqa: BLE001 - reported by the instance holder, in the test that needs it
        return None, None
    if spec is None:
        return None, None
    if spec.cwd is None:  # commands are relative to the settings file, like other paths
        spec = spec.model_copy(update={"cwd": str(source.parent if source else cwd)})
    if not spec.config_space:
        return spec, None
    try:
        from testfleet.execution.sut_spec import explored_space
        from testfleet.space.declare import space_to_dict

        space = explored_space(spec)
        return spec, None if space is None else space_to_dict(space)
    except Exception:  # noqa: BLE001 - the instance itself reports a bad config_space
        return spec, None


def sut_space_of(rootdir: Path) -> dict[str, Any] | None:
    """The explored SUT space of the project at ``rootdir`` (for harnesses that run items
    in-process, outside a run: the zoo's)."""
    from testfleet.settings import load_settings

    try:
        settings, source = load_settings([], {}, cwd=rootdir)
    except Exception:  # noqa: BLE001 - as above
        return None
    return sut_of(settings, source, rootdir)[1]
