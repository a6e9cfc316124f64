"""JSON report in pytest-json-report's layout, with testfleet's own facts under ``"testfleet"``.

Tools that already read ``.report.json`` (``created``, ``duration``, ``exitcode``, ``root``,
``environment``, ``summary``, ``collectors``, ``tests``, ``warnings``) read this file unchanged;
the run id, seed, fleet, flaky tests and every attempt are added under the ``testfleet`` key.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from testfleet.model import Result, Run, RunStatus
from testfleet.reporting.summary import (
    atomic_write_text,
    count_outcomes,
    exit_code_for,
    final_results,
)

_PHASES = ("setup", "call", "teardown")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, Any]:
    """The ``environment`` block (pytest-metadata's keys): Python, Platform, Packages, Plugins."""
    return {
        "Python": platform.python_version(),
        "Platform": platform.platform(),
        "Packages": {name: _version(name) for name in ("pytest", "pluggy")},
        "Plugins": {"testfleet": _version("testfleet")},
    }


def _output_phase(result: Result) -> str:
    """The phase that carries the result's captured output: call, else the phase that failed."""
    if "call" in result.phases or not result.phases:
        return "call"
    if result.when in result.phases:
        return str(result.when)
    return list(result.phases)[-1]


def _stage(result: Result, name: str, phase: dict[str, Any], output_phase: str) -> dict[str, Any]:
    """One setup/call/teardown stage: duration, outcome, then crash/stdout/stderr/log/longrepr."""
    outcome = str(phase.get("outcome") or "passed")
    stage: dict[str, Any] = {"duration": float(phase.get("duration") or 0.0), "outcome": outcome}
    failed_here = outcome == "failed" or (outcome == "skipped" and result.outcome == "xfailed")
    if failed_here and result.message and result.when in (None, name):
        stage["crash"] = {"path": result.file, "lineno": result.line, "message": result.message}
    streams = {key: phase.get(key) for key in ("stdout", "stderr", "log")}
    if name == output_phase:
        streams = {"stdout": streams["stdout"] or result.stdout,
                   "stderr": streams["stderr"] or result.stderr,
                   "log": streams["log"] or result.log}
    stage.update({key: value for key, value in streams.items() if value})
    longrepr = phase.get("longrepr")
    if longrepr is None and failed_here and result.when in (None, name):
        longrepr = result.longrepr
    if longrepr:
        stage["longrepr"] = str(longrepr)
    return stage


def json_test(result: Result) -> dict[str, Any]:
    """One entry of ``tests``: nodeid, lineno, keywords, outcome, stages and testfleet metadata."""
    item: dict[str, Any] = {"nodeid": result.nodeid, "lineno": result.line,
                            "outcome": str(result.outcome)}
    if result.keywords:
        item["keywords"] = list(result.keywords)
    phases = dict(result.phases)
    if not phases:  # a result without phase detail (timeout, crash) still gets its call stage
        phases = {"call": {"outcome": "failed" if result.outcome.is_failure else "passed",
                           "duration": result.duration, "longrepr": result.longrepr or None}}
    output_phase = _output_phase(result.model_copy(update={"phases": phases}))
    for name in _PHASES:
        if isinstance(phases.get(name), dict):
            item[name] = _stage(result, name, phases[name], output_phase)
    subtests = (phases.get("call") or {}).get("subtests") if isinstance(phases.get("call"), dict) else None
    if subtests:  # pytest's subtests: each with its description, outcome and, if not passed, why
        item["subtests"] = [{key: sub[key] for key in ("description", "outcome", "duration", "message",
                                                        "longrepr", "stdout", "stderr", "log") if sub.get(key)}
                            | {"outcome": sub.get("outcome", "passed")} for sub in subtests]
    item["metadata"] = {"worker": result.worker, "variant_id": result.variant_id,
                        "attempt": result.attempt, "flaky": result.flaky}
    return item


def compact_attempt(result: Result) -> dict[str, Any]:
    """One attempt in the ``testfleet.attempts`` list: who ran what, when, and how it ended."""
    entry: dict[str, Any] = {
        "nodeid": result.nodeid, "variant_id": result.variant_id, "attempt": result.attempt,
        "worker": result.worker, "outcome": str(result.outcome),
        "duration": round(result.duration, 6), "final": result.final, "flaky": result.flaky,
    }
    if result.message:
        entry["message"] = result.message
    if result.fingerprint:
        entry["fingerprint"] = result.fingerprint
    if result.started_at is not None:
        entry["started_at"] = result.started_at.isoformat()
    return entry


def json_report(run: Run, results: Sequence[Result],
                collect_errors: Sequence[dict[str, Any]] = (),
                warnings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The whole report as a dict (what :func:`write_json` writes)."""
    finals = final_results(results)
    # the words of the console's summary line (a failed subtest counts "failed", passed subtests
    # "subtests passed", a call failure plus a teardown error both), so the two always agree
    counts = count_outcomes(results, collect_errors, run.deselected)
    summary: dict[str, int] = dict(counts)
    summary["total"] = len(finals)
    summary["collected"] = (run.collected or len(finals)) + run.deselected
    exitcode = run.exit_code
    if exitcode is None:
        exitcode = exit_code_for(counts, collect_errors, run.status == RunStatus.interrupted)
    collectors = [{"nodeid": str(e.get("nodeid", "")), "outcome": "failed", "result": [],
                   "longrepr": str(e.get("longrepr") or "")} for e in collect_errors]
    return {
        "created": time.time(),
        "duration": run.duration,
        "exitcode": exitcode,
        "root": run.rootdir,
        "environment": environment(),
        "summary": summary,
        "collectors": collectors,
        "tests": [json_test(r) for r in finals],
        "warnings": [dict(w) for w in warnings],
        "testfleet": {
            "run_id": run.run_id, "seed": run.seed, "workers": run.workers,
            "backend": run.backend, "git_sha": run.git_sha, "status": str(run.status),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "flaky": [r.nodeid for r in finals if r.flaky],
            "attempts": [compact_attempt(r) for r in results],
        },
    }


def write_json(path: str | os.PathLike[str], run: Run, results: Sequence[Result],
               collect_errors: Sequence[dict[str, Any]] = (),
               warnings: Sequence[dict[str, Any]] = ()) -> Path:
    """Write the run's JSON report to ``path`` atomically (parents created); return the path."""
    report = json_report(run, results, collect_errors, warnings)
    return atomic_write_text(path, json.dumps(report, indent=2, default=str) + "\n")
