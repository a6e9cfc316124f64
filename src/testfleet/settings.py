"""One Settings object from ``[tool.testfleet]`` (``pyproject.toml``) or ``testfleet.toml``, plus flags.

Discovery works as pytest's rootdir does: from the common ancestor of the paths given (or the
current directory) upwards, the first ``testfleet.toml`` (its top level is the table) or
``pyproject.toml`` that has a ``[tool.testfleet]`` table wins. Paths in a settings file are relative
to that file's directory; paths given as flags are relative to the current directory. A flag
overrides a setting. Every problem is a :class:`SettingsError` naming the file and the key.

The default store is ``<rootdir>/.testfleet/testfleet.duckdb``, the same for every command, so
that ``testfleet runs`` (or ``show``, ``analyze``, ``telemetry``...) run from a project's folder
finds what ``testfleet run`` wrote there, wherever the run was started from. The rootdir
(:func:`find_rootdir`), looking from the common ancestor of the paths given (readers give none:
the current directory) upwards:

1. the folder of the testfleet settings file found as above;
2. else the nearest folder with a pytest configuration file, as pytest finds its rootdir:
   ``pytest.ini`` or ``.pytest.ini``, ``pyproject.toml`` with ``[tool.pytest.ini_options]``,
   ``tox.ini`` with ``[pytest]``, ``setup.cfg`` with ``[tool:pytest]``;
3. else the current directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from testfleet.errors import SettingsError, TestfleetError
from testfleet.execution.breakers import BreakerSettings
from testfleet.execution.handoff import HandoffSettings
from testfleet.execution.probes.settings import HelperSettings
from testfleet.execution.replication import ReplicateSettings
from testfleet.execution.specialisation import SpecialiseSettings

DEFAULT_STORE = ".testfleet/testfleet.duckdb"
MAX_SEED = 2**63 - 1
"""Seeds are stored as DuckDB BIGINT and fed to numpy, which refuses negative ones."""
PATH_KEYS = ("store", "junitxml", "json", "md", "html", "ruleset", "ruleset_b", "alluredir", "codequality")


class Settings(BaseModel):
    """Everything a run needs to know; each field is a ``[tool.testfleet]`` key and a flag."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    workers: int | Literal["auto"] = Field("auto", description="worker processes, or 'auto' (one per CPU)")
    store: str = Field(DEFAULT_STORE, min_length=1, description="the DuckDB file results go to")
    dist: Literal["load", "loadscope", "loadfile"] = "load"
    timeout: float | None = Field(None, gt=0, description="seconds before a test is killed")
    reruns: int = Field(0, ge=0, description="reruns of a failed test")
    max_worker_restarts: int | None = Field(None, ge=0, description="default: 4 per worker")
    maxfail: int = Field(0, ge=0, description="stop after this many failures (0: never)")
    junitxml: str | None = Field(None, min_length=1)
    json_report: str | None = Field(None, alias="json", min_length=1)
    md: str | None = Field(None, min_length=1)
    alluredir: str | None = Field(None, min_length=1, description="a folder for Allure 2 results")
    codequality: str | None = Field(None, min_length=1, description="a GitLab Code Quality report "
                                    "(Code Climate JSON) of the failures")
    html: str | None = Field(None, min_length=1, description="a self-contained HTML report")
    start_method: Literal["auto", "fork", "spawn"] = "auto"
    failed_first: bool = True
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="the run's seed (0 .. 2**63-1)")
    pytest_args: list[str] = Field(default_factory=list, description="extra arguments for pytest")
    backend: str = Field("local", description="local | ray | a plugin's backend: where workers run")
    ray_address: str | None = Field(None, min_length=1, description="'auto' or ray://host:port; none: start Ray here")
    ray_pip: list[str] = Field(default_factory=list, description="pip packages for the Ray job's runtime_env")
    ray_env: dict[str, str] = Field(default_factory=dict, description="environment variables for Ray workers")
    requirements: list[dict[str, Any]] = Field(
        default_factory=list, description="[{pattern = 'tests/gpu/*', gpus = 1}, ...]: requirements by path")
    strict_requirements: bool = False
    resources: dict[str, float] = Field(default_factory=dict, description="custom resources this machine offers")
    labels: dict[str, str] = Field(default_factory=dict, description="labels this machine offers")
    telemetry_interval: float = Field(0.1, ge=0, description="seconds between telemetry samples in "
                                      "each worker (0: no telemetry)")
    metrics_interval: float = Field(1.0, gt=0, description="seconds between scrapes of the SUT's "
                                    "Prometheus endpoint ([tool.testfleet.sut] metrics)")
    explore: str | None = Field(None, min_length=1, description="after the baseline, explore "
                                "variants for this many executions (500) or this long (2m)")
    explore_per_case: int | None = Field(None, ge=1, description="explored executions one case may "
                                         "take at most (default: twice its fair share of an "
                                         "--explore count when several cases explore)")
    ruleset: str | None = Field(None, min_length=1, description="mutation rules (YAML/JSON) that "
                                "exploration applies when their trigger holds")
    ruleset_b: str | None = Field(None, min_length=1, description="a second ruleset to A/B test "
                                  "against `ruleset`: the budget is split between them")
    ab: float = Field(50.0, gt=0, lt=100, description="percent of the exploration budget for ruleset_b")
    anomaly_threshold: float = Field(4.0, gt=0, description="robust z-score above which an "
                                     "execution's metric is flagged as an anomaly")
    anomaly_min_history: int = Field(8, ge=2, description="executions of a case (this run and "
                                     "earlier ones) before its metrics are judged")
    chaos: str | None = Field(None, min_length=1, description="failure injection: the profile mild, "
                              "moderate or severe, or a YAML schedule file")
    sut: dict[str, Any] | None = Field(None, description="[tool.testfleet.sut]: the system under test "
                                       "each worker starts (command, ready, config...)")
    breakers: BreakerSettings = Field(default_factory=BreakerSettings, description="[tool.testfleet.breakers]: "
                                      "circuit breakers and escalating recovery")
    handoff: HandoffSettings = Field(default_factory=HandoffSettings, description="[tool.testfleet.handoff]: "
                                     "speculative copies of stragglers, waiting for capacity")
    replicate: ReplicateSettings = Field(default_factory=ReplicateSettings, description="[tool.testfleet."
                                         "replicate]: failures replayed on other workers and configurations")
    specialise: SpecialiseSettings = Field(default_factory=SpecialiseSettings, description="[tool.testfleet."
                                           "specialise]: resources and explored work for stressed, failing instances")
    helpers: HelperSettings = Field(default_factory=HelperSettings, description="[tool.testfleet.helpers]: "
                                    "profiler, memory tracker, thread dump attached to a SUT on an anomaly")
    # a NotifySettings or None; typed Any so that its models (a tenth of a second to build) are
    # imported only by a project that has the table, not by every command that reads settings
    notify: Any = Field(None, description="[tool.testfleet.notify]: where the end "
                        "of a run is announced (Slack, webhook, e-mail, Jira, GitHub)")

    @field_validator("notify", mode="before")
    @classmethod
    def _notify_is_a_table(cls, table: Any) -> Any:
        if table is None:
            return None
        from testfleet.reporting.notify.config import NotifyTableError, parse_notify

        try:
            return parse_notify(table)
        except NotifyTableError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("sut")
    @classmethod
    def _sut_is_a_spec(cls, table: dict[str, Any] | None) -> dict[str, Any] | None:
        if table is not None:
            from testfleet.execution.sut import SutSpec

            try:
                SutSpec.model_validate(table)
            except TestfleetError as exc:
                raise ValueError(exc.message) from None
        return table

    def sut_spec(self) -> Any:
        """The validated ``[tool.testfleet.sut]`` (a SutSpec), or None."""
        if self.sut is None:  # the SUT module (httpx, config formats) loads only for a SUT
            return None
        from testfleet.execution.sut import SutSpec

        return SutSpec.model_validate(self.sut)

    @field_validator("requirements")
    @classmethod
    def _rules_have_patterns(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for position, rule in enumerate(rules):
            if not isinstance(rule.get("pattern"), str) or not rule["pattern"]:
                raise ValueError(f"entry {position} needs a 'pattern' (a path or node id glob)")
            from testfleet.execution.capabilities import Requirements

            try:
                Requirements.from_marker_kwargs(_rule_requirements(rule), where=f"requirements[{position}]")
            except TestfleetError as exc:
                raise ValueError(str(exc)) from None
        return rules

    reports: dict[str, str] = Field(default_factory=dict, description="[tool.testfleet.reports] "
                                    "NAME = PATH: files of plugins' reporters")

    @field_validator("backend")
    @classmethod
    def _backend_is_known(cls, value: str) -> str:
        from testfleet.plugins import registry  # local, ray and the plugins' backends

        known = registry().backends()
        if value not in known:
            raise ValueError(f"unknown backend {value!r}; expected {' | '.join(known)}")
        return value

    @field_validator("explore")
    @classmethod
    def _explore_is_a_budget(cls, value: str | None) -> str | None:
        if value is not None:
            from testfleet.execution.proposals import Budget

            try:
                Budget.parse(value)
            except TestfleetError:
                raise ValueError("expected a number of executions such as 500, or a time such "
                                 f"as 90s, 2m, 1h30m; got {value!r}") from None
        return value

    @field_validator("workers")
    @classmethod
    def _positive_workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1, or 'auto'")
        return value

    def requirement_rules(self) -> list[tuple[str, dict[str, Any]]]:
        """``requirements`` as (pattern, the requirements it adds) pairs."""
        return [(rule["pattern"], _rule_requirements(rule)) for rule in self.requirements]

    def worker_count(self) -> int:
        if self.workers == "auto":
            try:
                return max(1, len(os.sched_getaffinity(0)))
            except AttributeError:
                return max(1, os.cpu_count() or 1)
        return int(self.workers)

    def restart_budget(self) -> int:
        if self.max_worker_restarts is not None:
            return self.max_worker_restarts
        return 4 * self.worker_count()


def _rule_requirements(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "pattern"}


def find_settings_file(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The settings file that governs ``start`` and its raw table ({} when there is none)."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else [*start.parents]:
        candidate = folder / "testfleet.toml"
        if candidate.is_file():
            return candidate, _read_toml(candidate)
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            table = _read_toml(candidate).get("tool", {}).get("testfleet")
            if table is not None:
                if not isinstance(table, dict):
                    raise SettingsError("[tool.testfleet] must be a table", source=str(candidate),
                                        place="tool.testfleet", expected="a TOML table")
                return candidate, table
    return None, {}


def _has_pytest_config(folder: Path) -> bool:
    """Whether ``folder`` holds a file pytest takes as its configuration (and rootdir)."""
    if (folder / "pytest.ini").is_file() or (folder / ".pytest.ini").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            with pyproject.open("rb") as handle:
                if "ini_options" in tomllib.load(handle).get("tool", {}).get("pytest", {}):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            pass  # pytest itself reports a broken pyproject.toml
    for name, section in (("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]")):
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(line.strip() == section for line in text.splitlines()):
            return True
    return False


def find_rootdir(anchor: Path, source: Path | None, cwd: Path) -> Path:
    """The folder the default store lives in (see the module doc): the settings file's folder,
    else the nearest folder from ``anchor`` upwards with a pytest configuration, else ``cwd``."""
    if source is not None:
        return source.parent
    start = anchor.resolve()
    for folder in [start, *start.parents] if start.is_dir() else [*start.parents]:
        if _has_pytest_config(folder):
            return folder
    return cwd


def check_store_folder(store: str | Path, place: str = "--store") -> None:
    """Refuse a store whose folder does not exist, rather than creating folders anywhere a typo
    points; only the default ``.testfleet`` folder itself is created (in an existing folder)."""
    path = Path(store).expanduser()
    folder = path.parent
    if folder.is_dir() or path.exists():
        return
    if folder.name == ".testfleet" and folder.parent.is_dir():
        return
    raise SettingsError(f"the folder {folder} does not exist", source=str(path), place=place,
                        expected="an existing folder; only the default .testfleet folder is "
                                 "created")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"not valid TOML: {exc}", source=str(path)) from None
    except OSError as exc:
        raise SettingsError(f"cannot read: {exc.strerror}", source=str(path)) from None


def _place(path: Path | None, loc: tuple[Any, ...]) -> str:
    key = ".".join(str(part) for part in loc if not str(part).startswith(("int", "literal")))
    if path is not None and path.name == "pyproject.toml":
        return f"tool.testfleet.{key}" if key else "tool.testfleet"
    return key


def load_settings(paths: list[str] | None = None, overrides: dict[str, Any] | None = None,
                  cwd: Path | None = None) -> tuple[Settings, Path | None]:
    """Settings for a run over ``paths``: the file's table, then ``overrides`` (flags) on top."""
    cwd = cwd or Path.cwd()
    anchor = _common_ancestor([cwd / p.split("::", 1)[0] for p in paths or []]) or cwd
    source, table = find_settings_file(anchor)
    base = source.parent if source else cwd
    values = dict(table)
    for key in PATH_KEYS:
        if isinstance(values.get(key), str) and values[key]:
            values[key] = str(base / values[key])
    if isinstance(values.get("reports"), dict):  # plugin reporters' paths, relative to the file too
        values["reports"] = {name: str(base / path) if isinstance(path, str) and path else path
                             for name, path in values["reports"].items()}
    if isinstance(values.get("chaos"), str) and values["chaos"] not in ("mild", "moderate", "severe"):
        values["chaos"] = str(base / values["chaos"])  # a schedule file, relative like other paths
    try:
        settings = Settings.model_validate(values, strict=True)  # a file's "3" is not 3
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(_message(first), source=str(source), place=_place(source, first["loc"]),
                            expected=None) from None
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        try:
            if key == "replicate_budget":  # --replicate-budget: [tool.testfleet.replicate] budget
                settings.replicate = ReplicateSettings.model_validate({**settings.replicate.model_dump(),
                                                                       "budget": value})
            elif key == "breakers" or key.startswith("breaker_"):  # --breakers, --breaker-KEY: [...breakers] KEY
                name = "enabled" if key == "breakers" else key.removeprefix("breaker_")
                settings.breakers = BreakerSettings.model_validate({**settings.breakers.model_dump(), name: value},
                                                                   strict=True)
            elif key in ("handoff", "specialise"):  # --handoff/--no-handoff, --specialise/--no-specialise
                table = getattr(settings, key)
                setattr(settings, key, type(table).model_validate({**table.model_dump(), "enabled": value}))
            elif key == "helpers":  # --helpers: the file's helpers, or the default ones; --no-helpers: none
                enabled = (settings.helpers.enabled or None) if value else []
                settings.helpers = HelperSettings.model_validate({**settings.helpers.model_dump(), "enabled": enabled})
            else:
                setattr(settings, key, value)
        except ValidationError as exc:
            flag = "--" + ("json" if key == "json_report" else key.replace("_", "-"))
            raise SettingsError(f"invalid value {value!r}: {_message(exc.errors()[0])}",
                                place=flag) from None
    if "store" not in values and (overrides or {}).get("store") is None:
        settings.store = str(find_rootdir(anchor, source, cwd) / DEFAULT_STORE)
    return settings, source


def _message(error: Any) -> str:
    """pydantic's message without its "Value error, " prefix (ours are whole sentences)."""
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


def _common_ancestor(paths: list[Path]) -> Path | None:
    existing = [p.resolve() for p in paths if p.exists()]
    if not existing:
        return None
    common = Path(os.path.commonpath([str(p) for p in existing]))
    return common if common.is_dir() else common.parent
