"""Jira: one issue per failure group, found again across runs by its fingerprint label.

Each failure group carries the label ``testfleet-<fingerprint>``. At the end of a run one JQL
search (per 50 groups) asks which groups already have an *open* issue in the project
(``statusCategory != Done``); those get a comment saying the failure recurred, the others a new
issue, at most ``max_issues`` per run (the rest wait for the next run), so a run where everything
breaks does not flood the tracker. A closed issue is not reopened: a failure that comes back
after its issue was resolved gets a new one. The search is the source of truth (CI machines need
not share a store); what was created or commented is also stored as ``tracker_issue`` events.

``api = 3`` (Jira Cloud): ``GET /rest/api/3/search/jql``, descriptions and comments in the
Atlassian Document Format, basic auth with ``email`` and an API token. ``api = 2`` (Server and
Data Center): ``GET /rest/api/2/search``, wiki-markup text, and a personal access token as a
bearer token when no ``email`` is given.
"""

from __future__ import annotations

from typing import Any

from testfleet.reporting.notify.config import JiraTarget
from testfleet.reporting.notify.delivery import DeliveryError, Http, Tries, secret
from testfleet.reporting.notify.summary import FailureGroup, RunSummary

LABEL_PREFIX = "testfleet-"
SEARCH_CHUNK = 50
MAX_SUMMARY = 255  # Jira's limit on an issue's summary
Doc = list[tuple[str, Any]]  # ("p", text) | ("code", text) | ("list", [text, ...])


def label_of(group: FailureGroup) -> str:
    return LABEL_PREFIX + group.key


def deliver(target: JiraTarget, summary: RunSummary, env: Any, tries: Tries) -> dict[str, Any]:
    token = secret(env, target.token_env, "the Jira API token")
    headers = {"Accept": "application/json", "User-Agent": "testfleet"}
    if not target.email:
        headers["Authorization"] = f"Bearer {token}"
    base = f"{target.url.rstrip('/')}/rest/api/{target.api}"
    issues: list[dict[str, Any]] = []
    waiting = 0
    with Http(tries, headers=headers, auth=(target.email, token) if target.email else None) as http:
        try:
            known = _open_issues(http, base, target, [label_of(g) for g in summary.groups])
            for group in summary.groups:
                key = known.get(label_of(group))
                if key is not None:
                    http.request("POST", f"{base}/issue/{key}/comment",
                                 json={"body": _render(target, _comment(group, summary))})
                    issues.append({"fingerprint": group.key, "issue": key, "action": "commented"})
                elif sum(i["action"] == "created" for i in issues) < target.max_issues:
                    created = http.request("POST", f"{base}/issue", json=issue_body(target, group, summary))
                    key = _field(created, "key")
                    issues.append({"fingerprint": group.key, "issue": key, "action": "created"})
                else:
                    waiting += 1
        except DeliveryError as exc:  # what was filed before it failed is still recorded
            exc.detail = {"issues": issues}
            raise
    return {"issues": issues, "waiting": waiting}


def _open_issues(http: Http, base: str, target: JiraTarget, labels: list[str]) -> dict[str, str]:
    """label -> the key of the oldest open issue of the project that carries it."""
    found: dict[str, str] = {}
    for start in range(0, len(labels), SEARCH_CHUNK):
        chunk = labels[start:start + SEARCH_CHUNK]
        jql = (f'project = "{target.project}" AND labels in ({", ".join(_quoted(x) for x in chunk)}) '
               "AND statusCategory != Done ORDER BY created ASC")
        params: dict[str, Any] = {"jql": jql, "fields": "labels,status", "maxResults": 100}
        url = f"{base}/search/jql" if target.api == 3 else f"{base}/search"
        while True:
            page = http.request("GET", url, params=params).json()
            for issue in page.get("issues", []):
                for label in issue.get("fields", {}).get("labels", []):
                    if label in chunk:
                        found.setdefault(label, issue["key"])
            token = page.get("nextPageToken")  # v3
            seen = page.get("startAt", 0) + len(page.get("issues", []))  # v2
            if token and not page.get("isLast", False):
                params["nextPageToken"] = token
            elif target.api == 2 and page.get("issues") and seen < page.get("total", 0):
                params["startAt"] = seen
            else:
                break
    return found


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(response: Any, name: str) -> str:
    try:
        return str(response.json()[name])
    except (ValueError, KeyError, TypeError):
        raise DeliveryError(f"Jira's answer has no {name!r}: {response.text[:200]}", retryable=False) from None


def issue_body(target: JiraTarget, group: FailureGroup, summary: RunSummary) -> dict[str, Any]:
    """The create-issue request (``POST /rest/api/{2,3}/issue``) for a failure group."""
    title = " ".join(f"[testfleet] {group.title()}".split())
    return {"fields": {
        "project": {"key": target.project},
        "issuetype": {"name": target.issue_type},
        "summary": title[:MAX_SUMMARY],
        "labels": [*target.labels, label_of(group)],
        "description": _render(target, _description(group, summary)),
    }}


def _excerpt(group: FailureGroup, summary: RunSummary) -> str:
    first = next(f for f in summary.failures if f.group == group.key)
    text = first.longrepr or first.message or first.outcome
    return text if len(text) <= 4000 else text[-4000:]  # the end of a traceback says the most


def _description(group: FailureGroup, summary: RunSummary) -> Doc:
    doc: Doc = [("p", f"{len(group.nodeids)} test(s) fail this way in run {summary.run_id} "
                      f"({summary.line})." + (f" Git {summary.git_sha}." if summary.git_sha else ""))]
    doc.append(("list", list(group.nodeids[:50])))
    if group.frames:
        doc.append(("p", "Where: " + " < ".join(group.frames)))
    doc.append(("code", _excerpt(group, summary)))
    doc.append(("p", f"Fingerprint {group.key}. testfleet comments here when it fails again; "
                     "closing the issue makes the next occurrence open a new one."))
    return doc


def _comment(group: FailureGroup, summary: RunSummary) -> Doc:
    doc: Doc = [("p", f"Failed again in run {summary.run_id} ({summary.line})"
                      + (f", git {summary.git_sha}" if summary.git_sha else "") + ":")]
    doc.append(("list", list(group.nodeids[:50])))
    return doc


def _render(target: JiraTarget, doc: Doc) -> Any:
    return _adf(doc) if target.api == 3 else _wiki(doc)


def _wiki(doc: Doc) -> str:
    out = []
    for kind, value in doc:
        if kind == "list":
            out.append("\n".join(f"* {{{{{item}}}}}" for item in value))
        elif kind == "code":
            out.append("{noformat}\n" + value.replace("{noformat}", "{ noformat}") + "\n{noformat}")
        else:
            out.append(value)
    return "\n\n".join(out)


def _adf(doc: Doc) -> dict[str, Any]:
    """The Atlassian Document Format (version 1) of ``doc``; text nodes are never empty."""
    def text(value: str, code: bool = False) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "text", "text": value or " "}
        if code:
            node["marks"] = [{"type": "code"}]
        return node

    content: list[dict[str, Any]] = []
    for kind, value in doc:
        if kind == "list":
            content.append({"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [text(item, code=True)]}]}
                for item in value]})
        elif kind == "code":
            content.append({"type": "codeBlock", "attrs": {}, "content": [text(value)]})
        else:
            content.append({"type": "paragraph", "content": [text(value)]})
    return {"type": "doc", "version": 1, "content": content}


__all__ = ["LABEL_PREFIX", "deliver", "issue_body", "label_of"]
