"""[tool.testfleet.notify]: what it accepts, and one clear message for what it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.reporting.notify.config import (
    WHEN_VALUES,
    NotifySettings,
    NotifyTableError,
    SlackTarget,
    parse_notify,
)
from testfleet.settings import load_settings

FULL = {
    "attempts": 4, "backoff": 0.5, "deadline": 30.0,
    "targets": [
        {"kind": "slack", "name": "team", "url_env": "SLACK_WEBHOOK_URL", "when": ["new-failures", "flaky"]},
        {"kind": "webhook", "url": "https://ci.example.com/hook", "secret_env": "HOOK_SECRET"},
        {"kind": "email", "host": "smtp.example.com", "from": "ci@example.com", "to": "qa@example.com",
         "username": "ci", "password_env": "SMTP_PASSWORD"},
        {"kind": "jira", "url": "https://example.atlassian.net", "project": "QA", "email": "bot@example.com",
         "token_env": "JIRA_API_TOKEN"},
        {"kind": "github"},
    ],
}


def test_a_full_table_reads_with_each_kinds_defaults() -> None:
    notify = parse_notify(FULL)
    assert notify.delivery.attempts == 4 and notify.delivery.timeout == 10.0
    slack, hook, mail, jira, github = notify.targets
    assert isinstance(slack, SlackTarget) and slack.when == ("new-failures", "flaky")
    assert hook.when == ("always",) and mail.when == ("failure",)  # type: ignore[union-attr]
    assert mail.to == ("qa@example.com",) and mail.starttls and mail.port == 587  # type: ignore[union-attr]
    assert jira.api == 3 and jira.issue_type == "Bug"  # type: ignore[union-attr]
    assert github.token_env == "GITHUB_TOKEN" and github.when == ("always",)  # type: ignore[union-attr]
    assert [label for label, _ in notify.labelled()] == ["team", "webhook#1", "email#2", "jira#3", "github#4"]


@pytest.mark.parametrize("table, message", [
    ({"targets": [{"kind": "slack"}]},
     "targets[0].url_env: is missing (expected the name of the environment variable that holds the secret)"),
    ({"targets": [{"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"}]},
     "targets[0].url: a Slack webhook URL is a secret"),
    ({"targets": [{"kind": "teams"}]}, "targets[0].kind: unknown kind 'teams' (expected one of slack,"),
    ({"retries": 3}, "retries: is not a known key (expected one of attempts,"),
    ({"targets": [{"kind": "github", "when": ["failure", "sometimes"]}]},
     "targets[0].when[1]: 'sometimes' is not valid (expected one of always, failure, new-failures, flaky"),
    ({"targets": [{"kind": "webhook"}]}, "targets[0].url: give the endpoint as url or url_env"),
    ({"targets": [{"kind": "jira", "url": "https://j", "project": "QA", "token_env": "T", "api": 4}]},
     "targets[0].api: 4 is not valid (expected 2 (Jira Server/Data Center) or 3 (Jira Cloud))"),
    ({"attempts": 0}, "attempts: Input should be greater than or equal to 1"),
    ({"targets": {"kind": "github"}}, "targets: must be a list of tables, not a table"),
])
def test_a_malformed_table_names_the_key_and_what_was_expected(table: dict[str, Any], message: str) -> None:
    with pytest.raises(NotifyTableError) as caught:
        parse_notify(table)
    assert str(caught.value).startswith(message)


def test_a_secret_pasted_into_an_env_key_is_refused_without_being_repeated() -> None:
    secret = "https://hooks.slack.com/services/T000/B000/zq81token"
    with pytest.raises(NotifyTableError) as caught:
        parse_notify({"targets": [{"kind": "slack", "url_env": secret}]})
    assert caught.value.place == "targets[0].url_env"
    assert "zq81token" not in str(caught.value) and "hooks.slack.com" not in str(caught.value)


def test_settings_refuse_a_bad_notify_table_naming_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.testfleet]\nworkers = 1\n[[tool.testfleet.notify.targets]]\nkind = "email"\nhost = "smtp"\n'
        'from = "ci@example.com"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings([], cwd=tmp_path)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'pyproject.toml'} [tool.testfleet.notify]: targets[0].to: is missing")
    assert "(expected an e-mail address or a list of them)" in text


def test_settings_hold_the_validated_table(tmp_path: Path) -> None:
    (tmp_path / "testfleet.toml").write_text(
        '[notify]\nattempts = 2\n[[notify.targets]]\nkind = "github"\nwhen = "failure"\n')
    settings, _ = load_settings([], cwd=tmp_path)
    assert isinstance(settings.notify, NotifySettings)
    assert settings.notify.delivery.attempts == 2 and settings.notify.targets[0].when == ("failure",)
    # the run stores its settings as JSON: the table comes back out as it went in
    dumped = settings.model_dump(mode="json", by_alias=True)["notify"]
    assert parse_notify(dumped) == settings.notify


# -- Hypothesis: any table either reads, or is refused with one NotifyTableError -----------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(-1, 1e4, allow_nan=False),
                     st.sampled_from(["slack", "webhook", "email", "jira", "github", "SLACK_URL", "https://x.io/h",
                                      "a@b.io", "QA", *WHEN_VALUES, "", "not a name"]))
_keys = st.sampled_from(["kind", "name", "when", "url", "url_env", "secret_env", "host", "port", "from", "to",
                         "project", "token_env", "api", "labels", "attempts", "backoff", "deadline", "other"])
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(_keys, inner, max_size=3), max_leaves=5)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4), st.lists(st.dictionaries(_keys, _values, max_size=6), max_size=3))
def test_any_table_reads_or_is_refused_with_one_message(policy: dict[str, Any], targets: list[Any]) -> None:
    try:
        notify = parse_notify({**policy, "targets": targets})
    except NotifyTableError as exc:
        assert exc.place is not None and str(exc)
        assert exc.place == "" or exc.place.split(".")[0].split("[")[0] in {*policy, "targets"}
    else:
        assert parse_notify(notify.to_table()) == notify


_valid_target = st.one_of(
    st.fixed_dictionaries({"kind": st.just("slack"), "url_env": st.sampled_from(["SLACK_URL", "_X", "HOOK_9"])},
                          optional={"when": st.lists(st.sampled_from(WHEN_VALUES), min_size=1, max_size=4),
                                    "max_failures": st.integers(1, 40)}),
    st.fixed_dictionaries({"kind": st.just("webhook"), "url": st.just("http://127.0.0.1:8000/h")},
                          optional={"secret_env": st.just("HOOK_SECRET"), "name": st.sampled_from(["ci", "a-b"])}),
    st.fixed_dictionaries({"kind": st.just("email"), "host": st.just("localhost"), "from": st.just("a@b.c"),
                           "to": st.lists(st.just("x@y.z"), min_size=1, max_size=2)},
                          optional={"port": st.integers(1, 65535), "starttls": st.booleans()}),
    st.fixed_dictionaries({"kind": st.just("github")}, optional={"check_name": st.sampled_from(["tests", "x y"])}),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_valid_target, max_size=4), st.integers(1, 10), st.floats(0, 60))
def test_valid_tables_read_and_round_trip(targets: list[dict[str, Any]], attempts: int, backoff: float) -> None:
    notify = parse_notify({"attempts": attempts, "backoff": backoff, "targets": targets})
    assert [t.kind for t in notify.targets] == [t["kind"] for t in targets]
    assert parse_notify(notify.to_table()) == notify
    assert len({label for label, _ in notify.labelled()}) == len(targets)
