"""Slack and the generic webhook, delivered to real receivers on 127.0.0.1; retries and deadlines."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jsonschema

from testfleet.reporting.notify.config import parse_notify
from testfleet.reporting.notify.send import deliver_all
from testfleet.reporting.notify.slack import build_message
from testfleet.reporting.notify.summary import summarize
from testfleet.store.db import Store

from .conftest import FAST, Outcome, free_port, schema, store_run

FAILING = [Outcome("tests/test_a.py::test_ok"),
           Outcome("tests/test_a.py::test_broken", "failed", "AssertionError: <expected> & got 2", 14),
           Outcome("tests/test_b.py::test_shaky", flaky=True)]


def _settings(*targets: dict, **policy: float) -> object:
    table = {**FAST.model_dump(), **policy, "targets": list(targets)}
    return parse_notify(table)


def test_slack_gets_a_block_kit_message_within_its_limits(store: Store, service) -> None:
    slack = service(lambda request: (200, "ok"))
    summary = summarize(store, store_run(store, "r1", FAILING))
    results = deliver_all(_settings({"kind": "slack", "url_env": "SLACK_URL"}), summary,
                          env={"SLACK_URL": f"{slack.url}/services/T1/B2/secret"})
    assert [(r.ok, r.attempts) for r in results] == [(True, 1)]
    (request,) = slack.requests
    assert request.path == "/services/T1/B2/secret" and request.headers["content-type"] == "application/json"
    message = request.json()
    jsonschema.validate(message, schema("slack_message.json"))
    header, counts, *rest, context = message["blocks"]
    assert header["type"] == "header" and "failed" in header["text"]["text"]
    assert {f["text"] for f in counts["fields"]} >= {"*Failed*\n1", "*Passed*\n2", "*Flaky*\n1"}
    failure = next(b for b in rest if "fields" in b)
    assert "&lt;expected&gt; &amp; got 2" in failure["text"]["text"]  # mrkdwn-escaped, shown literally
    assert "`tests/test_a.py:14`" in json.dumps(failure["fields"])
    assert "run `r1`" in context["elements"][0]["text"]


def test_slack_message_stays_within_50_blocks_and_3000_characters(store: Store) -> None:
    many = [Outcome(f"tests/test_{i}.py::test_{i}", "failed", f"E{i}Error: " + "x" * 5000, 3) for i in range(80)]
    message = build_message(summarize(store, store_run(store, "big", many)), max_failures=40)
    jsonschema.validate(message, schema("slack_message.json"))  # maxItems 50, maxLength 3000 / 2000
    assert len(message["blocks"]) <= 50
    assert "more failure groups" in json.dumps(message["blocks"][-2])


def test_webhook_body_is_signed_with_hmac_sha256_and_timestamped(store: Store, service) -> None:
    hook = service(lambda request: (204, ""))
    summary = summarize(store, store_run(store, "r1", FAILING))
    before = int(time.time())
    (result,) = deliver_all(_settings({"kind": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_KEY"}),
                            summary, env={"HOOK_URL": f"{hook.url}/hook", "HOOK_KEY": "s3cr3t-key"})
    assert result.ok, result.error
    (request,) = hook.requests
    expected = "sha256=" + hmac.new(b"s3cr3t-key", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-testfleet-signature"], expected)
    wrong = "sha256=" + hmac.new(b"another-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-testfleet-signature"] != wrong
    body = request.json()
    assert body["event"] == request.headers["x-testfleet-event"] == "run.finished"
    assert int(request.headers["x-testfleet-timestamp"]) == body["sent_at"] >= before  # signed with the body
    assert body["delivery"] == request.headers["x-testfleet-delivery"]
    assert body["run"]["run_id"] == "r1" and body["run"]["new_failures"] == ["tests/test_a.py::test_broken"]
    assert body["run"]["flaky"] == ["tests/test_b.py::test_shaky"]
    assert body["run"]["groups"][0]["tests"] == ["tests/test_a.py::test_broken"]


def test_a_500_is_retried_with_backoff_then_succeeds_as_one_delivery(store: Store, service) -> None:
    answers = iter([(500, "busy"), (503, "busy"), (200, "ok")])
    hook = service(lambda request: next(answers))
    waits: list[float] = []
    summary = summarize(store, store_run(store, "r1", FAILING))
    (result,) = deliver_all(_settings({"kind": "webhook", "url": f"{hook.url}/h"}, attempts=4, backoff=0.25,
                                      max_delay=5.0), summary, env={}, sleep=waits.append)
    assert (result.ok, result.attempts) == (True, 3)
    assert waits == [0.25, 0.5]  # doubling
    ids = {r.headers["x-testfleet-delivery"] for r in hook.requests}
    assert len(hook.requests) == 3 and len(ids) == 1  # one delivery, retried: the receiver can drop repeats


def test_a_client_error_is_not_retried_and_its_answer_is_reported(store: Store, service) -> None:
    slack = service(lambda request: (400, "invalid_blocks"))
    summary = summarize(store, store_run(store, "r1", FAILING))
    (result,) = deliver_all(_settings({"kind": "slack", "url_env": "SLACK_URL"}), summary,
                            env={"SLACK_URL": f"{slack.url}/services/T/B/tok3n"})
    assert (result.ok, result.attempts) == (False, 1)
    assert "HTTP 400" in result.error and "invalid_blocks" in result.error
    assert "tok3n" not in result.error  # the URL is the secret: only its host is named


def test_missing_secret_and_unreachable_endpoint_fail_clearly(store: Store) -> None:
    summary = summarize(store, store_run(store, "r1", FAILING))
    port = free_port()  # nothing listens there
    results = deliver_all(_settings({"kind": "slack", "url_env": "NOT_SET_ANYWHERE"},
                                    {"kind": "webhook", "url": f"http://127.0.0.1:{port}/h"}),
                          summary, env={}, sleep=lambda s: None)
    missing, unreachable = results
    assert (missing.ok, missing.attempts) == (False, 0)
    assert missing.error == "the environment variable NOT_SET_ANYWHERE (the Slack webhook URL) is not set"
    assert (unreachable.ok, unreachable.attempts) == (False, FAST.attempts)
    assert unreachable.error.startswith(f"cannot reach 127.0.0.1:{port}")


def test_no_wait_outlasts_the_deadline(store: Store, service) -> None:
    hook = service(lambda request: (503, "down"))
    summary = summarize(store, store_run(store, "r1", FAILING))
    waits: list[float] = []
    (result,) = deliver_all(_settings({"kind": "webhook", "url": f"{hook.url}/h"}, attempts=10, backoff=30.0,
                                      max_delay=60.0, deadline=5.0), summary, env={}, sleep=waits.append)
    assert not result.ok and result.attempts == 1 and waits == []
    assert "before the deadline" in result.error


def test_filters_choose_who_hears_about_a_run(store: Store, service) -> None:
    hook = service(lambda request: (200, "ok"))
    passing = summarize(store, store_run(store, "r1", [Outcome("tests/test_a.py::test_ok")]))
    targets = [{"kind": "webhook", "name": when, "url": f"{hook.url}/{when}", "when": when}
               for when in ("always", "failure", "new-failures", "flaky")]
    assert [r.target for r in deliver_all(_settings(*targets), passing, env={})] == ["always"]
    failing = summarize(store, store_run(store, "r2", FAILING, minute=1))
    assert [r.target for r in deliver_all(_settings(*targets), failing, env={})] == \
        ["always", "failure", "new-failures", "flaky"]
    assert sorted(r.path for r in hook.requests) == ["/always", "/always", "/failure", "/flaky", "/new-failures"]


