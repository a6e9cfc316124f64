"""GitLab Code Quality report (``--codequality F``): the run's failures as Code Climate issues.

GitLab reads a JSON array of objects with ``description``, ``check_name``, ``fingerprint``,
``severity`` (info, minor, major, critical, blocker) and ``location.path`` plus
``location.lines.begin``, and shows them in the merge request widget and on the diff. Each failing
test is one issue at the line of the test file where it failed (the traceback's last entry in that
file), else at the test's own line. A flaky test (failed, then passed on a rerun) is a ``minor``
issue; a failure ``major``; an error, a timeout or a crash ``critical``; a collection error
``blocker``. The fingerprint hashes the node id and the failure's fingerprint, so that the same
failure is the same issue in the next pipeline and GitLab can tell new failures from old ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.atomic import atomic_write_text
from testfleet.model import Outcome, Result
from testfleet.reporting.summary import final_results
from testfleet.reporting.variant_names import variant_name

__all__ = ["codequality_issues", "crash_line", "write_codequality"]

SEVERITY = {Outcome.failed: "major", Outcome.error: "critical", Outcome.timeout: "critical",
            Outcome.crashed: "critical"}
# pytest's traceback entries: "tests/test_a.py:9: AssertionError" (long) or "tests/test_a.py:9: in f"
_ENTRY = re.compile(r"^(?P<path>[^\s:][^:\n]*?):(?P<line>\d+):(?: |$)", re.MULTILINE)


def crash_line(result: Result) -> int:
    """The line of the test's file where it failed: the last traceback entry in that file; else
    the test's own line (1 when unknown)."""
    path = result.file or result.nodeid.split("::")[0]
    best = None
    for match in _ENTRY.finditer(result.longrepr or ""):
        where = match.group("path").replace("\\", "/")
        if where == path or where.endswith("/" + path) or path.endswith("/" + where):
            best = int(match.group("line"))
    return best or result.line or 1


def _fingerprint(*parts: object) -> str:
    return hashlib.md5(json.dumps(parts, default=str).encode(), usedforsecurity=False).hexdigest()


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _issue(result: Result, failed_before: Result | None, shown: str) -> dict[str, Any] | None:
    if result.outcome.is_failure:
        severity, word = SEVERITY[result.outcome], result.outcome.value
    elif result.flaky:
        severity, word = "minor", "flaky"
    else:
        return None
    attempt = result
    if result.flaky and failed_before is not None:  # where it failed, not where it passed
        attempt = failed_before
    reason = _first_line(attempt.message) or _first_line(attempt.longrepr)
    if result.flaky:
        reason = f"passed on attempt {result.attempt} after failing" + (f": {reason}" if reason else "")
    description = f"{shown} {word}" + (f": {reason}" if reason else "")
    return {"type": "issue", "check_name": f"testfleet/{word}",
            "description": description[:1000], "categories": ["Bug Risk"],
            "fingerprint": _fingerprint("testfleet", word, result.nodeid, result.fingerprint or reason),
            "severity": severity,
            "location": {"path": result.file or result.nodeid.split("::")[0],
                         "lines": {"begin": crash_line(attempt)}}}


def _collect_issue(error: Mapping[str, Any]) -> dict[str, Any]:
    nodeid = str(error.get("nodeid") or "")
    path = nodeid.split("::")[0] or "."
    text = str(error.get("longrepr") or "")
    lines = [int(m.group("line")) for m in _ENTRY.finditer(text) if m.group("path").endswith(path)]
    return {"type": "issue", "check_name": "testfleet/collection-error",
            "description": f"{nodeid or path} could not be collected: {_first_line(text)}"[:1000],
            "categories": ["Bug Risk"], "fingerprint": _fingerprint("testfleet", "collect", nodeid),
            "severity": "blocker", "location": {"path": path, "lines": {"begin": lines[-1] if lines else 1}}}


def codequality_issues(results: Sequence[Result], collect_errors: Sequence[Mapping[str, Any]] = (),
                       variants: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The Code Climate issues of a run: its collection errors, failures and flaky tests.
    ``variants`` (variant id -> origin and params) names explored variants by their values."""
    issues = [_collect_issue(error) for error in collect_errors]
    seen: dict[str, dict[str, Any]] = {}
    repeats: dict[str, int] = {}
    failed_before = {r.variant_id: r for r in sorted(results, key=lambda r: r.attempt)
                     if not r.final and r.outcome.is_failure}
    for result in final_results(results):
        variant = (variants or {}).get(result.variant_id) or {}
        shown = variant_name(result.nodeid, variant.get("params"), variant.get("origin"))
        issue = _issue(result, failed_before.get(result.variant_id), shown)
        if issue is None:
            continue
        # explored variants run the same item: one issue per test and way of failing, counted
        key = issue["fingerprint"]
        repeats[key] = repeats.get(key, 0) + 1
        seen.setdefault(key, issue)
    for key, issue in seen.items():
        if repeats[key] > 1:
            issue["description"] = f"{issue['description'][:900]} ({repeats[key]} executions)"
        issues.append(issue)
    return issues


def write_codequality(path: str | os.PathLike[str], results: Sequence[Result],
                      collect_errors: Sequence[Mapping[str, Any]] = (),
                      variants: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write the Code Quality JSON to ``path`` atomically; return the path."""
    issues = codequality_issues(results, collect_errors, variants)
    return atomic_write_text(path, json.dumps(issues, indent=1) + "\n")
