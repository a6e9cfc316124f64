"""Jira and GitHub against fake REST APIs on 127.0.0.1 that implement the endpoints testfleet uses."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import jsonschema

from testfleet.reporting.notify.config import parse_notify
from testfleet.reporting.notify.send import ISSUE_EVENT, notify_run, stored_issues
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

from .conftest import FAST, Outcome, Request, schema, store_run

FAILURES = [Outcome("tests/test_a.py::test_ok"),
            Outcome("tests/test_a.py::test_db[pg]", "failed", "ConnectionError: refused by 10.0.0.1", 11),
            Outcome("tests/test_a.py::test_db[my]", "failed", "ConnectionError: refused by 10.0.0.2", 11),
            Outcome("tests/test_b.py::test_key", "failed", "KeyError: 'name'", 4)]


class FakeJira:
    """Jira's search, create-issue and add-comment endpoints, over an in-memory project."""

    def __init__(self, api: int, auth: str) -> None:
        self.api, self.auth = api, auth
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[Any]] = {}
        self.created_bodies: list[Any] = []

    def __call__(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("authorization") != self.auth:
            return 401, {"errorMessages": ["not authenticated"]}
        base = f"/rest/api/{self.api}"
        search = f"{base}/search/jql" if self.api == 3 else f"{base}/search"
        if request.method == "GET" and request.path == search:
            jql = request.query["jql"][0]
            project = re.search(r'project = "(\w+)"', jql).group(1)  # type: ignore[union-attr]
            wanted = set(re.findall(r'"(testfleet-[0-9a-f]+)"', jql))
            assert "statusCategory != Done" in jql
            found = [{"key": key, "fields": {"labels": issue["labels"], "status": {"name": issue["status"]}}}
                     for key, issue in self.issues.items()
                     if issue["project"] == project and issue["status"] != "Done" and wanted & set(issue["labels"])]
            page: dict[str, Any] = {"issues": found}
            page.update({"isLast": True} if self.api == 3 else {"startAt": 0, "total": len(found)})
            return 200, page
        if request.method == "POST" and request.path == f"{base}/issue":
            body = request.json()
            jsonschema.validate(body, schema("jira_create_issue.json"))
            self.created_bodies.append(body)
            key = f"{body['fields']['project']['key']}-{len(self.issues) + 1}"
            self.issues[key] = {"project": body["fields"]["project"]["key"], "labels": body["fields"]["labels"],
                                "status": "To Do"}
            return 201, {"id": str(10000 + len(self.issues)), "key": key, "self": f"{base}/issue/{key}"}
        match = re.fullmatch(rf"{base}/issue/([A-Z]+-\d+)/comment", request.path)
        if request.method == "POST" and match and match.group(1) in self.issues:
            self.comments.setdefault(match.group(1), []).append(request.json()["body"])
            return 201, {"id": "1"}
        return 404, {"errorMessages": [f"no {request.method} {request.path}"]}


def _notify(store: Store, run: Any, target: dict[str, Any], env: dict[str, str]) -> tuple[list[Any], str, str]:
    out, err = io.StringIO(), io.StringIO()
    settings = parse_notify({**FAST.model_dump(), "targets": [target]})
    results = notify_run(store, settings, run, env=env, stdout=out, stderr=err, sleep=lambda s: None)
    return results, out.getvalue(), err.getvalue()


def test_jira_files_each_new_failure_group_once_and_comments_when_it_recurs(store: Store, service) -> None:
    basic = "Basic " + base64.b64encode(b"bot@example.com:jira-t0ken").decode()
    jira = FakeJira(3, basic)
    api = service(jira)
    target = {"kind": "jira", "name": "qa", "url": api.url, "project": "QA", "email": "bot@example.com",
              "token_env": "JIRA_TOKEN"}
    env = {"JIRA_TOKEN": "jira-t0ken"}
    first = store_run(store, "r1", FAILURES, minute=0)
    (result,), _, err = _notify(store, first, target, env)
    assert result.ok and err == "", err
    assert sorted(jira.issues) == ["QA-1", "QA-2"] and jira.comments == {}
    db_issue = jira.created_bodies[0]["fields"]  # the larger group first: test_db[pg] and [my]
    assert db_issue["summary"].startswith("[testfleet] ConnectionError: refused by")
    assert db_issue["description"]["type"] == "doc"  # v3: Atlassian Document Format
    assert "tests/test_a.py::test_db[pg]" in str(db_issue["description"])
    assert db_issue["labels"][0] == "testfleet" and db_issue["labels"][1].startswith("testfleet-")
    mapping = stored_issues(store, "qa")
    assert sorted(mapping.values()) == ["QA-1", "QA-2"]

    second = store_run(store, "r2", FAILURES, minute=1)
    (result,), _, _ = _notify(store, second, target, env)
    assert result.ok and [i["action"] for i in result.detail["issues"]] == ["commented", "commented"]
    assert sorted(jira.issues) == ["QA-1", "QA-2"]  # no duplicate
    assert set(jira.comments) == {"QA-1", "QA-2"} and "r2" in str(jira.comments["QA-1"])
    events = TelemetryStore(store).events("r2", kinds=[ISSUE_EVENT])
    assert sorted((e["issue"], e["action"]) for e in events) == [("QA-1", "commented"), ("QA-2", "commented")]

    jira.issues["QA-1"]["status"] = "Done"  # resolved; then it fails again: a new issue, not a reopened one
    third = store_run(store, "r3", FAILURES, minute=2)
    (result,), _, _ = _notify(store, third, target, env)
    assert sorted((i["issue"], i["action"]) for i in result.detail["issues"]) == \
        [("QA-2", "commented"), ("QA-3", "created")]


def test_jira_server_uses_api_2_a_bearer_token_and_caps_new_issues(store: Store, service) -> None:
    jira = FakeJira(2, "Bearer pat-123")
    api = service(jira)
    target = {"kind": "jira", "url": api.url, "project": "OPS", "api": 2, "token_env": "JIRA_PAT",
              "max_issues": 1, "issue_type": "Task"}
    (result,), _, _ = _notify(store, store_run(store, "r1", FAILURES), target, {"JIRA_PAT": "pat-123"})
    assert result.ok, result.error
    assert list(jira.issues) == ["OPS-1"] and result.detail["waiting"] == 1  # the other waits for the next run
    fields = jira.created_bodies[0]["fields"]
    assert fields["issuetype"] == {"name": "Task"}
    assert isinstance(fields["description"], str) and "{noformat}" in fields["description"]  # wiki markup


def test_jira_refusal_is_one_warning_and_a_stored_failed_delivery(store: Store, service) -> None:
    api = service(FakeJira(3, "Basic nobody"))
    run = store_run(store, "r1", FAILURES)
    target = {"kind": "jira", "url": api.url, "project": "QA", "email": "bot@example.com", "token_env": "JIRA_TOKEN"}
    (result,), _, err = _notify(store, run, target, {"JIRA_TOKEN": "wrong-token"})
    assert not result.ok and result.attempts == 1
    assert err.count("\n") == 1 and err.startswith("WARNING: notification jira#0 (jira) not delivered after 1 "
                                                   "attempt: HTTP 401 from GET 127.0.0.1")
    assert "wrong-token" not in err
    (event,) = TelemetryStore(store).events("r1", kinds=["delivery"])
    assert (event["target"], event["via"], event["ok"], event["attempts"]) == ("jira#0", "jira", False, 1)
    assert "HTTP 401" in event["error"]


class FakeChecks:
    def __init__(self) -> None:
        self.created: list[Request] = []
        self.updates: list[Request] = []

    def __call__(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("authorization") != "Bearer gh-token" or \
                request.headers.get("x-github-api-version") != "2022-11-28":
            return 401, {"message": "Bad credentials"}
        body = request.json()
        jsonschema.validate(body, schema("github_check_run.json"))
        if request.method == "POST" and request.path == "/repos/acme/shop/check-runs":
            assert {"name", "head_sha"} <= set(body)
            self.created.append(request)
            return 201, {"id": 42, "html_url": "https://github.com/acme/shop/runs/42"}
        if request.method == "PATCH" and request.path == "/repos/acme/shop/check-runs/42":
            self.updates.append(request)
            return 200, {"id": 42}
        return 404, {"message": "Not Found"}


def test_github_check_run_carries_every_annotation_in_batches_of_50(store: Store, service) -> None:
    checks = FakeChecks()
    api = service(checks)
    many = [Outcome(f"tests/test_many.py::test_{i}", "failed", f"AssertionError: case {i}", 100 + i)
            for i in range(120)]
    run = store_run(store, "r1", many, rootdir="/home/runner/work/shop/shop/service")
    env = {"GITHUB_TOKEN": "gh-token", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "0123abc",
           "GITHUB_WORKSPACE": "/home/runner/work/shop/shop"}
    (result,), out, _ = _notify(store, run, {"kind": "github", "api_url": api.url}, env)
    assert result.ok, result.error
    assert out == "" and result.detail["check_run"] == 42
    (created,) = checks.created
    body = created.json()
    assert (body["head_sha"], body["status"], body["conclusion"]) == ("0123abc", "completed", "failure")
    batches = [body["output"]["annotations"]] + [u.json()["output"]["annotations"] for u in checks.updates]
    assert [len(b) for b in batches] == [50, 50, 20]
    notes = {n["title"]: n for batch in batches for n in batch}
    assert len(notes) == 120
    first = notes["tests/test_many.py::test_7"]
    assert first["path"] == "service/tests/test_many.py"  # relative to the checkout
    assert first["start_line"] == first["end_line"] == 107 and first["annotation_level"] == "failure"


def test_github_without_a_token_prints_workflow_commands(store: Store) -> None:
    run = store_run(store, "r1", [Outcome("tests/test_a.py::test_x[a,b]", "failed", "AssertionError: 50%\nmore", 9)])
    (result,), out, err = _notify(store, run, {"kind": "github"}, {})
    assert result.ok and result.detail["mode"] == "workflow-commands" and err == ""
    assert out == ("::error file=tests/test_a.py,line=9,endLine=9,title=tests/test_a.py%3A%3Atest_x[a%2Cb]"
                   "::AssertionError: 50%25\n")


def test_github_outside_actions_fails_clearly(store: Store) -> None:
    run = store_run(store, "r1", FAILURES)
    (result,), _, err = _notify(store, run, {"kind": "github"}, {"GITHUB_TOKEN": "gh-token"})
    assert not result.ok and result.attempts == 0
    assert "GITHUB_REPOSITORY and GITHUB_SHA not set" in err
