"""GitHub: a check run on the commit, with an annotation on each failing test's line.

With a token (``token_env``, ``GITHUB_TOKEN`` by default; the workflow needs ``permissions:
checks: write``) the Checks API gets one ``POST /repos/{owner}/{repo}/check-runs`` (completed,
with its conclusion and the first 50 annotations, the API's limit per request) and then one
``PATCH .../check-runs/{id}`` per further 50, which GitHub appends. The repository and commit are
``GITHUB_REPOSITORY`` and ``GITHUB_SHA``, the API ``api_url`` or ``GITHUB_API_URL``. Paths are made
relative to ``GITHUB_WORKSPACE`` (the checkout), as annotations need.

Without a token the same annotations are printed as workflow commands (``::error file=F,line=N,
title=T::message``), which GitHub Actions turns into annotations by itself.
"""

from __future__ import annotations

import os
from typing import Any

from testfleet.reporting.notify.config import GithubTarget
from testfleet.reporting.notify.delivery import DeliveryError, Http, Tries
from testfleet.reporting.notify.summary import RunSummary

PER_REQUEST = 50  # annotations per create/update request (the Checks API's limit)
MAX_ANNOTATIONS = 1000
MAX_OUTPUT = 65535  # characters of a check run's summary
CONCLUSIONS = {0: "success", 1: "failure", 2: "cancelled", 5: "neutral"}


def build_annotations(summary: RunSummary, workspace: str | None) -> list[dict[str, Any]]:
    """One ``failure`` annotation per failing test, on the line it failed on."""
    out = []
    for failure in summary.failures[:MAX_ANNOTATIONS]:
        line = failure.line or 1
        out.append({"path": _repo_path(summary.rootdir, failure.file or failure.nodeid.split("::")[0],
                                       workspace),
                    "start_line": line, "end_line": line, "annotation_level": "failure",
                    "title": failure.nodeid[:255], "message": failure.headline() or failure.outcome,
                    "raw_details": failure.longrepr[-60000:]})
    return out


def _repo_path(rootdir: str, file: str, workspace: str | None) -> str:
    if not workspace or not rootdir:
        return file
    full = os.path.normpath(os.path.join(rootdir, file))
    relative = os.path.relpath(full, workspace)
    return file if relative.startswith("..") else relative.replace(os.sep, "/")


def check_output(summary: RunSummary, shown: int) -> dict[str, str]:
    lines = [f"**{summary.line}**", ""]
    if summary.new_failures:
        lines += [f"New failures ({len(summary.new_failures)}):", ""]
        lines += [f"- `{f.nodeid}`" for f in summary.new_failures[:100]] + [""]
    if summary.flaky:
        lines += [f"Flaky ({len(summary.flaky)}):", ""] + [f"- `{n}`" for n in summary.flaky[:100]] + [""]
    if len(summary.failures) > shown:
        lines.append(f"{len(summary.failures) - shown} more failures are not annotated "
                     f"(`testfleet show {summary.run_id}`).")
    lines.append(f"testfleet run `{summary.run_id}`")
    text = "\n".join(lines)
    return {"title": summary.line[:255], "summary": text[:MAX_OUTPUT]}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(notes: list[dict[str, Any]]) -> list[str]:
    """The annotations as workflow commands, one line each."""
    return [f"::error file={escape_property(a['path'])},line={a['start_line']},"
            f"endLine={a['end_line']},title={escape_property(a['title'])}::{escape_data(a['message'])}"
            for a in notes]


def deliver(target: GithubTarget, summary: RunSummary, env: Any, tries: Tries) -> dict[str, Any]:
    notes = build_annotations(summary, env.get("GITHUB_WORKSPACE"))
    token = env.get(target.token_env)
    if not token:
        return {"mode": "workflow-commands", "annotations": len(notes), "stdout": workflow_commands(notes)}
    repository, sha = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_SHA")
    if not repository or not sha:
        missing = " and ".join(n for n, v in (("GITHUB_REPOSITORY", repository), ("GITHUB_SHA", sha)) if not v)
        raise DeliveryError(f"{missing} not set: a check run needs the repository and commit "
                            "(GitHub Actions sets them)", retryable=False)
    api = (target.api_url or env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "testfleet"}
    output = check_output(summary, len(notes))
    body = {"name": target.check_name, "head_sha": sha, "status": "completed",
            "conclusion": CONCLUSIONS.get(summary.exit_code, "failure"),
            "external_id": summary.run_id, "output": {**output, "annotations": notes[:PER_REQUEST]}}
    with Http(tries, headers=headers) as http:
        created = http.request("POST", f"{api}/repos/{repository}/check-runs", json=body).json()
        check_id = created.get("id")
        if check_id is None:
            raise DeliveryError("GitHub's answer has no check run id", retryable=False)
        detail = {"mode": "check-run", "check_run": check_id, "url": created.get("html_url"),
                  "annotations": len(notes)}
        for start in range(PER_REQUEST, len(notes), PER_REQUEST):
            try:
                http.request("PATCH", f"{api}/repos/{repository}/check-runs/{check_id}",
                             json={"output": {**output, "annotations": notes[start:start + PER_REQUEST]}})
            except DeliveryError as exc:
                exc.detail = {**detail, "annotations": start}
                raise
    return detail


__all__ = ["build_annotations", "check_output", "deliver", "workflow_commands"]
