"""What a notification says about a finished run, read back from the store.

Every notifier builds its message from one :class:`RunSummary`, so Slack, e-mail, the webhook, Jira
and GitHub never disagree about a run:

* the outcome counts and pytest's summary line, the exit code and the run's status;
* the failing tests (final results only), each with the line it failed on in its own file;
* failure *groups*: failures with equal fingerprints (:func:`testfleet.analysis.failures.fingerprint`:
  exception, normalised message, top user frames, no line numbers), the unit a tracker files once;
* *new* failures: tests failing now whose latest result before this run (in a finished run of the
  same project, i.e. the same pytest rootdir) was not a failure, the same "last failed" rule as
  ``--lf`` (a test that failed and has not run since still counts as failing);
* the tests this run marked flaky.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from testfleet.analysis.failures import fingerprint
from testfleet.model import FAILURE_OUTCOMES, Run
from testfleet.reporting.summary import summary_line

_LOCATION = re.compile(r"^(\S+?):(\d+): ", re.MULTILINE)  # pytest's "path:line: Exception" lines


@dataclass(frozen=True)
class Failure:
    """One failing test of the run (a failing explored variant is its test's failure too)."""

    nodeid: str
    outcome: str
    message: str
    file: str
    line: int | None
    group: str
    new: bool
    longrepr: str = ""

    def headline(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else self.outcome
        return first[:300]


@dataclass(frozen=True)
class FailureGroup:
    """Failures with one fingerprint: what a tracker files as one issue."""

    key: str
    exception: str
    message: str
    frames: tuple[str, ...]
    nodeids: tuple[str, ...]
    new: bool

    def title(self) -> str:
        text = f"{self.exception}: {self.message}" if self.message else self.exception
        return text.strip().splitlines()[0][:200] if text.strip() else "failure"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    exit_code: int
    counts: dict[str, int]
    line: str
    duration: float
    git_sha: str | None
    rootdir: str
    failures: tuple[Failure, ...] = ()
    groups: tuple[FailureGroup, ...] = ()
    flaky: tuple[str, ...] = ()
    previous_run: str | None = None
    started_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.exit_code != 0

    @property
    def new_failures(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.new)

    @property
    def project(self) -> str:
        return self.rootdir.rstrip("/").rsplit("/", 1)[-1] or "tests"

    def matches(self, when: Sequence[str]) -> bool:
        """Whether a target with these ``when`` filters is told about this run."""
        checks = {"always": True, "failure": self.failed, "new-failures": bool(self.new_failures),
                  "flaky": bool(self.flaky)}
        return any(checks[w] for w in when)

    def title(self) -> str:
        verdict = {0: "passed", 1: "failed", 2: "interrupted", 5: "no tests ran"}.get(self.exit_code, "error")
        return f"testfleet {self.project}: {verdict}"

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON (the generic webhook's body, minus its envelope)."""
        return {
            "run_id": self.run_id, "project": self.project, "rootdir": self.rootdir,
            "status": self.status, "exit_code": self.exit_code, "counts": dict(self.counts),
            "summary": self.line, "duration": self.duration, "git_sha": self.git_sha,
            "started_at": self.started_at, "previous_run": self.previous_run,
            "failures": [{"nodeid": f.nodeid, "outcome": f.outcome, "message": f.headline(),
                          "file": f.file, "line": f.line, "group": f.group, "new": f.new}
                         for f in self.failures],
            "groups": [{"fingerprint": g.key, "exception": g.exception, "message": g.message,
                        "frames": list(g.frames), "tests": list(g.nodeids), "new": g.new}
                       for g in self.groups],
            "new_failures": [f.nodeid for f in self.new_failures],
            "flaky": list(self.flaky),
        }


def failing_line(file: str, line: int | None, longrepr: str) -> int | None:
    """The line of the test's own file the failure happened on: pytest's last ``file:line:``
    location in that file (the innermost frame there), else the test's definition line."""
    if file and longrepr:
        hits = [int(m.group(2)) for m in _LOCATION.finditer(longrepr)
                if m.group(1).replace("\\", "/").endswith(file.replace("\\", "/"))]
        if hits:
            return hits[-1]
    return line


def summarize(store: Any, run: Run) -> RunSummary:
    """The :class:`RunSummary` of a finished run, from what the store holds."""
    previously = failing_before(store, run)
    failures: dict[tuple[str, str], Failure] = {}
    groups: dict[str, dict[str, Any]] = {}
    # only the failing rows are read: a run of 100k passing tests costs nothing here
    rows = store.query(
        "SELECT nodeid, outcome, message, longrepr, file, line FROM results "
        "WHERE run_id = $1 AND final AND list_contains($2, outcome) "
        "ORDER BY finished_at NULLS LAST, nodeid, attempt, rowid",
        [run.run_id, sorted(o.value for o in FAILURE_OUTCOMES)])
    for nodeid, outcome, message, longrepr, file, line in rows:
        fp = fingerprint(outcome, message, longrepr)
        new = nodeid not in previously
        failure = Failure(nodeid, outcome, message, file, failing_line(file, line, longrepr), fp.key, new,
                          longrepr)
        failures.setdefault((nodeid, fp.key), failure)
        group = groups.setdefault(fp.key, {"fp": fp, "nodeids": [], "new": True})
        if nodeid not in group["nodeids"]:
            group["nodeids"].append(nodeid)
        group["new"] = group["new"] and new
    ordered = sorted(groups.values(), key=lambda g: (-len(g["nodeids"]), g["fp"].key))
    return RunSummary(
        run_id=run.run_id, status=str(run.status), exit_code=int(run.exit_code or 0),
        counts=dict(run.counts), line=summary_line(run.counts, run.duration, run.flaky),
        duration=run.duration, git_sha=run.git_sha, rootdir=run.rootdir,
        failures=tuple(failures.values()),
        groups=tuple(FailureGroup(g["fp"].key, g["fp"].exception, g["fp"].message, g["fp"].frames,
                                  tuple(g["nodeids"]), g["new"]) for g in ordered),
        flaky=tuple(store.flaky(run.run_id)), previous_run=previous_run(store, run),
        started_at=run.started_at.isoformat())


def failing_before(store: Any, run: Run) -> set[str]:
    """Nodeids whose latest final result before ``run``, in a finished run of the same project,
    includes a failure: ``Store.last_failed``'s rule, with this run and later ones left out."""
    rows = store.query(
        "SELECT nodeid FROM ("
        "  SELECT r.nodeid, r.outcome, dense_rank() OVER (PARTITION BY r.nodeid "
        "         ORDER BY u.started_at DESC, u.run_id DESC) AS k "
        "  FROM results r JOIN runs u USING (run_id) "
        "  WHERE r.final AND u.finished_at IS NOT NULL AND u.run_id <> $2 AND u.rootdir = $3 "
        "    AND u.started_at <= (SELECT started_at FROM runs WHERE run_id = $2)) "
        "WHERE k = 1 GROUP BY nodeid HAVING bool_or(list_contains($1, outcome))",
        [sorted(o.value for o in FAILURE_OUTCOMES), run.run_id, run.rootdir])
    return {row[0] for row in rows}


def previous_run(store: Any, run: Run) -> str | None:
    """The run of the same project that finished last before this one started, if any."""
    rows = store.query(
        "SELECT run_id FROM runs WHERE run_id <> $1 AND rootdir = $2 AND finished_at IS NOT NULL "
        "AND started_at <= (SELECT started_at FROM runs WHERE run_id = $1) "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1", [run.run_id, run.rootdir])
    return str(rows[0][0]) if rows else None


__all__ = ["Failure", "FailureGroup", "RunSummary", "failing_before", "failing_line", "summarize"]
