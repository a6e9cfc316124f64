"""``[tool.testfleet.sut]``: the system under test as declared (:class:`SutSpec`), validated.

See :mod:`testfleet.execution.sut` for what the keys do; this module holds the table's model, its
validators (every problem a :class:`SettingsError` naming the key), the placeholder filler shared
with the instances, and :func:`draw_config` (an instance's config drawn from ``config_space``).
"""

from __future__ import annotations

import copy
import re
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from testfleet.configs.formats import detect_format
from testfleet.errors import ConfigError, SettingsError

if TYPE_CHECKING:
    from testfleet.space.space import Space

__all__ = ["SutSpec", "draw_config", "explored_space", "instance_config", "load_config_space"]

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
    #: a space file or JSON Schema of the SUT's configuration (relative to ``cwd``): exploration
    #: varies the config within it (``sut.<key>``, its constraints kept)
    config_space: str | None = None
    #: true: each instance's config is a point drawn from ``config_space`` (seeded by the run's
    #: seed and the instance name) laid over ``config``; false (default): instances run ``config``
    draw_from_space: bool = False
    #: true: the SUT's working directory (``{workdir}``) and the data in it are kept when the
    #: instance restarts with another configuration; false (default): each configuration starts
    #: in a fresh, empty one
    persist_state: bool = False

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _settings_error(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> SutSpec:
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


    def model_post_init(self, _context: Any) -> None:
        if self.draw_from_space and self.config_space is None:
            raise SettingsError(f"{TABLE} draw_from_space: needs config_space (the space to draw "
                                "each instance's config from)", place="draw_from_space")


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


def _space_path(spec: SutSpec) -> Path:
    assert spec.config_space is not None
    path = Path(spec.config_space)
    if not path.is_absolute() and spec.cwd is not None:
        path = Path(spec.cwd) / path
    return path


def load_config_space(spec: SutSpec) -> Space | None:
    """The space of ``config_space`` (None: none declared); SettingsError when it cannot be read."""
    if spec.config_space is None:
        return None
    from testfleet.configs.fuzz import load_input
    from testfleet.errors import TestfleetError

    path = _space_path(spec)
    try:
        return load_input(path).space
    except TestfleetError as exc:
        raise SettingsError(f"{TABLE} config_space: {exc}") from None


def instance_config(spec: SutSpec, instance: str, seed: int) -> dict[str, Any]:
    """The config an instance runs when no variant says otherwise: ``config`` (the declared
    defaults: the baseline is the same on every run), or a drawn point when ``draw_from_space``."""
    return draw_config(spec, instance, seed) if spec.draw_from_space else dict(spec.config)


def draw_config(spec: SutSpec, instance: str, seed: int) -> dict[str, Any]:
    """``config``, with a point of ``config_space`` (if any) laid over it.

    The point is drawn uniformly from the space's valid points, seeded by ``seed`` and the
    instance name: the same run seed gives every instance the same config again.
    """
    space = load_config_space(spec)
    if space is None:
        return dict(spec.config)
    from testfleet.configs.fuzz import manifest_params
    from testfleet.model import stable_id
    from testfleet.space.sampling import random_points

    points = random_points(space, 1, seed=int(stable_id("sut-config", seed, instance)[:8], 16)).points
    if not points:
        raise SettingsError(f"{TABLE} config_space: {_space_path(spec)} has no valid point (its "
                            "constraints exclude every configuration)")
    return {**spec.config, **space.nest(space.render(manifest_params(points[0].params)))}


def explored_space(spec: SutSpec, prefix: str = "sut.") -> Space | None:
    """``config_space`` as exploration varies it: every dimension named ``<prefix><key>``, every
    constraint kept (its names renamed alike), and each dimension's baseline the value ``config``
    gives it (what the baseline instance runs), where ``config`` gives one inside the dimension."""
    space = load_config_space(spec)
    if space is None:
        return None
    from testfleet.space.space import Space

    flat = _flatten(spec.config)
    dims = {}
    for name, dim in space.dimensions.items():
        value = flat.get(name)
        if value is not None and value != dim.default and _contains(dim, value):
            dim = copy.copy(dim)
            dim.default = value
        dims[prefix + name] = dim
    return Space(dims, [prefixed_names(c.text, prefix) for c in space.constraints],
                 source=space.source)


def _contains(dim: Any, value: Any) -> bool:
    try:
        return bool(dim.contains(value))
    except (TypeError, ValueError):
        return False


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def prefixed_names(text: str, prefix: str) -> str:
    """A constraint's text with every parameter name it uses written as `` `<prefix><name>` ``
    (functions, keywords, strings and numbers untouched)."""
    from testfleet.space.expressions import _tokenize

    tokens = _tokenize(text)
    out: list[str] = []
    pos = 0
    for i, token in enumerate(tokens):
        if token.kind != "name":
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following is not None and following.kind == "op" and following.text == "(":
            continue  # a function call
        out.append(text[pos:token.pos])
        out.append(f"`{prefix}{token.value}`")
        pos = token.pos + len(token.text)
    out.append(text[pos:])
    return "".join(out)
