"""``[tool.testfleet.sut]``: the system under test as declared (:class:`SutSpec`), validated.

See :mod:`testfleet.execution.sut` for what the keys do; this module holds the table's model, its
validators (every problem a :class:`SettingsError` naming the key), the placeholder filler shared
with the instances, and :func:`draw_config` (an instance's config drawn from ``config_space``).
"""

from __future__ import annotations

import re
import shlex
import signal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from testfleet.configs.formats import detect_format
from testfleet.errors import ConfigError, SettingsError

__all__ = ["SutSpec", "draw_config"]

TABLE = "[tool.testfleet.sut]"
READY_KINDS = ("http", "tcp", "log")
_PLACEHOLDER = re.compile(r"\{(port|config|instance|workdir)\}")


def _signal_number(name: str) -> int:
    text = name.strip().upper()
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ValueError(f"unknown signal {name!r} (expected a name such as SIGTERM, SIGINT)") from None


class SutSpec(BaseModel):
    """The ``[tool.testfleet.sut]`` table. Constructing it with bad values raises SettingsError."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    command: str
    env: dict[str, str] = {}
    config_template: str | None = None
    config: dict[str, Any] = {}
    #: where the config is written when there is no template (its suffix picks YAML/JSON/TOML...);
    #: placeholders allowed; default ``sut-{instance}.yaml`` in the workdir.
    config_file: str | None = None
    ready: dict[str, str] | None = None
    start_timeout: float = 10.0
    stop_signal: str = "SIGTERM"
    grace: float = 5.0
    cwd: str | None = None
    #: the SUT's Prometheus endpoint (placeholders allowed), scraped by the telemetry sampler
    metrics: str | None = None
    #: a space file or JSON Schema each instance's config is drawn from (relative to ``cwd``)
    config_space: str | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _settings_error(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> SutSpec:  # type: ignore[override]
        if not isinstance(obj, dict):
            raise SettingsError(f"{TABLE} expected a table, got {type(obj).__name__}")
        return cls(**obj)

    @field_validator("command")
    @classmethod
    def _check_command(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split into arguments: {exc}") from None
        return value

    @field_validator("ready")
    @classmethod
    def _check_ready(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) != 1 or next(iter(value)) not in READY_KINDS:
            raise ValueError("expected one of " + ", ".join(READY_KINDS) + " (exactly one)")
        kind, target = next(iter(value.items()))
        if not target.strip():
            raise ValueError(f"{kind}: must not be empty")
        if kind == "http" and not target.startswith(("http://", "https://")):
            raise ValueError("http: expected a URL starting with http:// or https://")
        if kind == "tcp":
            port_text = _fill(target, {"port": "1"}).rpartition(":")[2]
            if not port_text.isdigit():
                raise ValueError("tcp: expected a port or host:port, such as \"{port}\"")
        if kind == "log":
            try:
                re.compile(_fill(target, {"port": "1", "instance": "i", "config": "c", "workdir": "w"}))
            except re.error as exc:
                raise ValueError(f"log: not a regular expression: {exc}") from None
        return value

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL starting with http:// or https://, such as "
                             "\"http://127.0.0.1:{port}/metrics\"")
        return value

    @field_validator("start_timeout")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a number of seconds > 0")
        return value

    @field_validator("grace")
    @classmethod
    def _check_grace(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("must be a number of seconds >= 0")
        return value

    @field_validator("stop_signal")
    @classmethod
    def _check_signal(cls, value: str) -> str:
        _signal_number(value)
        return value

    @field_validator("config_file")
    @classmethod
    def _check_config_file(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                detect_format(_fill(value, {"instance": "i"}))
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return value


def _settings_error(exc: ValidationError) -> SettingsError:
    problems: list[str] = []
    first_key = None
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(table)"
        first_key = first_key or key
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(SutSpec.model_fields)
            problems.append(f"{key}: unknown key (expected one of {allowed})")
            continue
        message = str(err["msg"])
        message = message.removeprefix("Value error, ")
        problems.append(f"{key}: {message}")
    error = SettingsError(f"{TABLE} " + "; ".join(problems))
    error.place = first_key
    return error


def _fill(text: str, values: dict[str, str]) -> str:
    """Replace only the known ``{name}`` placeholders present in ``values``; other braces stay."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def draw_config(spec: SutSpec, instance: str, seed: int) -> dict[str, Any]:
    """The instance's config: ``config``, with a point of ``config_space`` (if any) laid over it.

    The point is drawn uniformly from the space's valid points, seeded by ``seed`` and the
    instance name: the same run seed gives every instance the same config again.
    """
    if spec.config_space is None:
        return dict(spec.config)
    from testfleet.configs.fuzz import load_input, manifest_params
    from testfleet.errors import TestfleetError
    from testfleet.model import stable_id
    from testfleet.space.sampling import random_points

    path = Path(spec.config_space)
    if not path.is_absolute() and spec.cwd is not None:
        path = Path(spec.cwd) / path
    try:
        space = load_input(path).space
        points = random_points(space, 1, seed=int(stable_id("sut-config", seed, instance)[:8], 16)).points
    except TestfleetError as exc:
        raise SettingsError(f"{TABLE} config_space: {exc}") from None
    if not points:
        raise SettingsError(f"{TABLE} config_space: {path} has no valid point (its constraints "
                            "exclude every configuration)")
    return {**spec.config, **space.nest(space.render(manifest_params(points[0].params)))}

