"""``[tool.testfleet.notify]``: where a finished run is announced, and how hard to try.

The table holds the delivery policy and a list of targets, one ``[[tool.testfleet.notify.targets]]``
entry each, told apart by ``kind``::

    [tool.testfleet.notify]
    attempts = 3          # tries per target
    backoff = 1.0         # seconds before the second try, doubled each time
    max_delay = 10.0      # the longest wait between tries
    timeout = 10.0        # seconds per request
    deadline = 60.0       # seconds for all targets together

    [[tool.testfleet.notify.targets]]
    kind = "slack"
    url_env = "SLACK_WEBHOOK_URL"
    when = ["new-failures", "flaky"]

Secrets (webhook URLs with tokens, signing secrets, passwords, API tokens) are never written in the
file: a ``*_env`` key names the environment variable that holds each. A missing variable is found
when the run ends and reported as a failed delivery, not here: the same file serves machines that
hold the secret and machines that do not.

:func:`parse_notify` reads the raw table; every problem is one :class:`NotifyTableError` naming the
key (``targets[1].url_env``) and what was expected, which settings.py turns into the usual
:class:`~testfleet.errors.SettingsError` (exit 4, before the run starts).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

WHEN_VALUES = ("always", "failure", "new-failures", "flaky")
When = Literal["always", "failure", "new-failures", "flaky"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EnvName = Annotated[str, Field(min_length=1, max_length=200)]


class NotifyTableError(ValueError):
    """A malformed notify table: ``place`` is the key (``targets[0].url_env``), ``expected`` what
    would be accepted there."""

    def __init__(self, place: str, message: str, expected: str | None = None) -> None:
        self.place, self.problem, self.expected = place, message, expected
        text = f"{place}: {message}" if place else message
        super().__init__(text + (f" (expected {expected})" if expected else ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        # TOML arrays arrive as lists; the models keep tuples (frozen, comparable)
        if isinstance(data, dict):
            return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        return data


class Delivery(_Strict):
    """How hard to try: ``attempts`` per target, waits of ``backoff`` seconds doubling up to
    ``max_delay``, ``timeout`` per request, and one ``deadline`` for every target together."""

    attempts: int = Field(default=3, ge=1, le=10)
    backoff: float = Field(default=1.0, ge=0, le=60)
    max_delay: float = Field(default=10.0, ge=0, le=300)
    timeout: float = Field(default=10.0, gt=0, le=300)
    deadline: float = Field(default=60.0, gt=0, le=3600)


class _Target(_Strict):
    kind: str  # each kind's model narrows it to its Literal
    name: str | None = Field(default=None, min_length=1, max_length=100)
    when: tuple[When, ...] = Field(default=("failure",), min_length=1)

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def label(self, position: int) -> str:
        """How messages and stored events name this target."""
        return self.name or f"{self.kind}#{position}"

    def secret_envs(self) -> dict[str, str | None]:
        """Each ``*_env`` key set on this target -> the variable it names."""
        return {key: getattr(self, key) for key in type(self).model_fields if key.endswith("_env")}


class SlackTarget(_Target):
    """An incoming webhook; its URL is a secret, so it only comes from ``url_env``."""

    kind: Literal["slack"]
    url_env: EnvName
    max_failures: int = Field(default=10, ge=1, le=40)


class WebhookTarget(_Target):
    """Any HTTP endpoint: a JSON body, signed with HMAC-SHA256 when ``secret_env`` is set."""

    kind: Literal["webhook"]
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    when: tuple[When, ...] = Field(default=("always",), min_length=1)


class EmailTarget(_Target):
    """A message through an SMTP server (STARTTLS by default, or implicit TLS with ``ssl``)."""

    kind: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = Field(default=None, min_length=1)
    password_env: EnvName | None = None
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = Field(min_length=1)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many_addresses(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class JiraTarget(_Target):
    """An issue per failure group, found again by its fingerprint label and commented on."""

    kind: Literal["jira"]
    url: str = Field(pattern=r"^https?://\S+$")
    project: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    issue_type: str = Field(default="Bug", min_length=1)
    api: Literal[2, 3] = 3
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    token_env: EnvName
    labels: tuple[Annotated[str, Field(pattern=r"^\S+$")], ...] = ("testfleet",)
    max_issues: int = Field(default=10, ge=1, le=100)


class GithubTarget(_Target):
    """A check run with annotations (token set), else workflow-command annotations on stdout."""

    kind: Literal["github"]
    token_env: EnvName = "GITHUB_TOKEN"
    api_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    check_name: str = Field(default="testfleet", min_length=1, max_length=100)
    when: tuple[When, ...] = Field(default=("always",), min_length=1)


Target = SlackTarget | WebhookTarget | EmailTarget | JiraTarget | GithubTarget
KINDS: dict[str, type[_Target]] = {"slack": SlackTarget, "webhook": WebhookTarget,
                                   "email": EmailTarget, "jira": JiraTarget, "github": GithubTarget}
NotifyTarget = _Target
"""The base of a target's model: a plugin's notification kind subclasses it (NotifierSpec.target)."""


def _kinds() -> dict[str, type[_Target]]:
    """kind -> target model: the built-in kinds and the plugins' (testfleet_add_notifiers)."""
    from testfleet.plugins import registry

    return {kind: spec.target for kind, spec in registry().notifiers().items() if spec.target is not None}

_EXPECTED = {
    "when": "one of " + ", ".join(WHEN_VALUES) + ", or a list of them",
    "url": "an http(s) URL",
    "api_url": "an http(s) URL",
    "api": "2 (Jira Server/Data Center) or 3 (Jira Cloud)",
    "project": "a Jira project key such as QA",
    "from": "an e-mail address",
    "to": "an e-mail address or a list of them",
    "email": "the e-mail address of the Jira account the token belongs to",
    "labels": "a list of labels without spaces",
}


class NotifySettings(_Strict):
    """The validated ``[tool.testfleet.notify]`` table."""

    delivery: Delivery = Delivery()  # frozen: one shared default is safe
    targets: tuple[_Target, ...] = ()  # a kind's own model: built-in (Target) or a plugin's

    def labelled(self) -> list[tuple[str, _Target]]:
        """(label, target) for every target, labels unique (a repeated name gets ``#n``)."""
        seen: dict[str, int] = {}
        out = []
        for position, target in enumerate(self.targets):
            label = target.label(position)
            seen[label] = seen.get(label, 0) + 1
            out.append((label if seen[label] == 1 else f"{label}#{position}", target))
        return out

    @model_serializer(mode="plain")
    def to_table(self) -> dict[str, Any]:
        """The table this was read from (what :func:`parse_notify` reads back to an equal value)."""
        table: dict[str, Any] = self.delivery.model_dump()
        table["targets"] = [_target_table(t) for t in self.targets]
        return table


def _target_table(target: _Target) -> dict[str, Any]:
    data = target.model_dump(by_alias=True, exclude_none=True)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


def parse_notify(table: Any) -> NotifySettings:
    """``[tool.testfleet.notify]`` as :class:`NotifySettings`, or one :class:`NotifyTableError`."""
    if isinstance(table, NotifySettings):
        return table
    if not isinstance(table, dict):
        raise NotifyTableError("", f"must be a table, not {_type_name(table)}",
                               "[tool.testfleet.notify] with [[tool.testfleet.notify.targets]] entries")
    policy = {key: value for key, value in table.items() if key != "targets"}
    try:
        delivery = Delivery.model_validate(policy)
    except ValidationError as exc:
        raise _from_pydantic("", exc, Delivery, policy) from None
    raw_targets = table.get("targets", [])
    if not isinstance(raw_targets, list):
        raise NotifyTableError("targets", f"must be a list of tables, not {_type_name(raw_targets)}",
                               "[[tool.testfleet.notify.targets]] entries")
    targets = [_parse_target(position, raw) for position, raw in enumerate(raw_targets)]
    return NotifySettings(delivery=delivery, targets=tuple(targets))


def _parse_target(position: int, raw: Any) -> _Target:
    where = f"targets[{position}]"
    if not isinstance(raw, dict):
        raise NotifyTableError(where, f"must be a table, not {_type_name(raw)}", "a table with a 'kind'")
    kind = raw.get("kind")
    kinds = _kinds()
    if not isinstance(kind, str) or kind not in kinds:
        got = "missing" if kind is None else f"unknown kind {kind!r}" if isinstance(kind, str) \
            else f"must be a string, not {_type_name(kind)}"
        raise NotifyTableError(f"{where}.kind", got, "one of " + ", ".join(kinds))
    model = kinds[kind]
    if kind == "slack" and "url" in raw:  # the one key people will try: refuse it with the reason
        raise NotifyTableError(f"{where}.url", "a Slack webhook URL is a secret and is not read from "
                               "the file", "url_env naming the environment variable that holds it")
    for key in model.model_fields:
        if key.endswith("_env") and isinstance(raw.get(key), str) and not _ENV_NAME.match(raw[key]):
            # never echo the value: it is most likely the secret itself
            raise NotifyTableError(f"{where}.{key}", "is not the name of an environment variable",
                                   "a variable name such as MY_SECRET (letters, digits, _), whose "
                                   "value the run reads when it ends")
    try:
        target = model.model_validate(raw)
    except ValidationError as exc:
        raise _from_pydantic(where, exc, model, raw) from None
    if isinstance(target, WebhookTarget) and (target.url is None) == (target.url_env is None):
        raise NotifyTableError(f"{where}.url", "give the endpoint as url or url_env (one of them)",
                               "url = 'https://...' or url_env = 'NAME_OF_A_VARIABLE'")
    if isinstance(target, EmailTarget) and target.ssl and target.starttls:
        raise NotifyTableError(f"{where}.starttls", "ssl (implicit TLS) and starttls exclude each other",
                               "starttls = false with ssl = true")
    return target


def _from_pydantic(where: str, exc: ValidationError, model: type[BaseModel], raw: dict[str, Any],
                   ) -> NotifyTableError:
    error = exc.errors()[0]
    loc = [part for part in error["loc"] if isinstance(part, str)]
    key = loc[0] if loc else ""
    suffix = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:])
    if isinstance(raw.get(key), str):  # `when = "x"` is read as ["x"]: its place is the key itself
        suffix = ""
    place = ".".join(filter(None, [where, key])) + suffix
    if error["type"] == "missing":
        message = "is missing"
    elif error["type"] == "extra_forbidden":
        message = "is not a known key"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] in ("string_pattern_mismatch", "literal_error"):
            # pydantic would quote its regular expression; the value is shown unless it may be a secret
            shown = error.get("input")
            message = f"{shown!r} is not valid" if isinstance(shown, str | int) and len(str(shown)) < 80 \
                and not key.endswith("_env") else "is not valid"
    expected = _EXPECTED.get(key)
    if key.endswith("_env"):
        expected = "the name of the environment variable that holds the secret"
    if error["type"] == "extra_forbidden":
        known = [info.alias or name for name, info in model.model_fields.items()]
        if model is Delivery:
            known.append("targets")
        expected = "one of " + ", ".join(known)
    return NotifyTableError(place, message, expected)


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


__all__ = ["WHEN_VALUES", "Delivery", "EmailTarget", "GithubTarget", "JiraTarget", "NotifySettings",
           "NotifyTableError", "SlackTarget", "Target", "WebhookTarget", "parse_notify"]
