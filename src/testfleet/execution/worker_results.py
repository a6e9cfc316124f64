"""What a worker reports about one item's run: pytest's reports folded into a :class:`TestResult`.

The outcome is the most telling category pytest's own ``pytest_report_teststatus`` gives the
item's reports (so a plugin's categories count as under pytest), each phase keeps what pytest's
short summary would print for it, and subtests get entries of their own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from testfleet.execution.protocol import Series, TestResult

OUTCOME_PRIORITY = ("failed", "error", "xpassed", "xfailed", "skipped", "passed")


def crash_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    text = str(longrepr or "")
    return text.strip().splitlines()[-1] if text.strip() else ""


def fingerprint_of(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return None
    exc_type = str(crash.message).split(":", 1)[0].strip()
    return f"{Path(str(crash.path)).name}:{crash.lineno}:{exc_type}"


def _is_subtest(report: pytest.TestReport) -> bool:
    """A subtest's report: pytest's own ``subtests`` (pytest >= 9) or the pytest-subtests plugin."""
    return callable(getattr(report, "_sub_test_description", None)) and hasattr(report, "context")


def _skip_place(config: pytest.Config, report: pytest.TestReport) -> list[Any]:
    """Where a skip happened and why, folded the way pytest's ``-rs`` summary folds them: the
    path relative to the invocation folder, the line (None for a ``skip`` mark on the test)."""
    fspath, lineno, reason = report.longrepr  # type: ignore[misc,str-unpack]
    try:
        path = os.path.relpath(fspath, config.invocation_params.dir)
    except ValueError:  # another drive (Windows)
        path = str(fspath)
    keywords = getattr(report, "keywords", {})
    if report.when == "setup" and "skip" in keywords and "pytestmark" not in keywords:
        lineno = None
    return [path, lineno, str(reason)]


def _subtest_entry(config: pytest.Config, rep: pytest.TestReport, category: str, word: str) -> dict[str, Any]:
    """One subtest: its description (``[msg] (i=1)``), outcome, pytest's summary word and, when
    it did not pass, its message, traceback and captured output."""
    entry: dict[str, Any] = {"description": rep._sub_test_description(), "outcome": rep.outcome,
                             "category": category, "word": word, "duration": rep.duration}
    if rep.failed or rep.skipped:
        entry["message"] = crash_message(rep)
        entry["longrepr"] = rep.longreprtext
        entry["fingerprint"] = fingerprint_of(rep)
        if rep.skipped and isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            entry["skip"] = _skip_place(config, rep)
        for title, content in rep.sections:
            for stream in ("stdout", "stderr", "log"):
                if title.startswith(f"Captured {stream}"):
                    entry[stream] = entry.get(stream, "") + content
    return entry


def result_of(config: pytest.Config, reports: list[pytest.TestReport],
              warnings: list[dict[str, Any]] | None = None, *,
              telemetry: dict[str, dict[str, float]] | None = None, series: Series | None = None) -> TestResult:
    """Everything the coordinator needs about one item's run, as plain data (cheap to pickle),
    with the telemetry summary of its window and the samples not yet shipped."""
    categories: list[str] = []
    phases: dict[str, dict[str, Any]] = {}
    longreprs: list[str] = []
    message = ""
    when = None
    fingerprint = None
    subtests: list[dict[str, Any]] = []
    for rep in reports:
        category, _letter, word = config.hook.pytest_report_teststatus(report=rep, config=config)
        if category:
            categories.append(category)
        word = str(word[0] if isinstance(word, tuple) else word)
        if _is_subtest(rep):  # its own entry; the item's message and traceback stay the test's own
            subtests.append(_subtest_entry(config, rep, category, word))
            continue
        phase: dict[str, Any] = {"outcome": rep.outcome, "duration": rep.duration}
        if category:  # what pytest's short summary shows for this report
            phase.update(category=category, word=word)
        if rep.skipped and isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            phase["skip"] = _skip_place(config, rep)
        if rep.failed or (rep.skipped and rep.longrepr is not None):
            text = rep.longreprtext
            phase["longrepr"] = text
            if rep.failed:
                phase["message"] = crash_message(rep)
                # sections plugins add beside the captured output (the SUT's log) stay with it
                extra = "".join(f"\n\n{'-' * 8} {title} {'-' * 8}\n{content}" for title, content
                                in rep.sections if not title.startswith("Captured "))
                text += extra
                longreprs.append(text if rep.when == "call" else f"[{rep.when}] {text}")
                if when is None:
                    when, message, fingerprint = rep.when, crash_message(rep), fingerprint_of(rep)
        if hasattr(rep, "wasxfail"):
            phase["wasxfail"] = rep.wasxfail
        phases[rep.when] = phase
    outcome = next((o for o in OUTCOME_PRIORITY if o in categories), None)
    if outcome is None:  # a plugin's own category: fall back on the report outcomes
        outcome = "failed" if any(r.failed for r in reports) else "passed"
    failed_subtest = next((sub for sub in subtests if sub["outcome"] == "failed"), None)
    if failed_subtest is not None and not longreprs:  # only subtests failed: say the first
        when, message, fingerprint = "call", failed_subtest["message"], failed_subtest.get("fingerprint")
    elif failed_subtest is not None and fingerprint is None:  # "contains 1 failed subtest"
        fingerprint = failed_subtest.get("fingerprint")
    if subtests:
        phases.setdefault("call", {"outcome": "passed", "duration": 0.0})["subtests"] = subtests
    if not message:
        for rep in reports:
            if rep.skipped and not _is_subtest(rep):
                message = getattr(rep, "wasxfail", "") or crash_message(rep)
                when = rep.when
                break
    last = next((r for r in reversed(reports) if not _is_subtest(r)), None)
    return TestResult(
        outcome=outcome,
        categories=categories,
        duration=sum(r.duration for r in reports if not _is_subtest(r)),  # subtests ran in call
        start=reports[0].start if reports else time.time(),
        stop=last.stop if last else time.time(),
        when=when,
        message=message,
        longrepr="\n\n".join(longreprs),
        stdout=last.capstdout if last else "",
        stderr=last.capstderr if last else "",
        log=last.caplog if last else "",
        fingerprint=fingerprint,
        phases=phases,
        warnings=warnings or [],
        telemetry=telemetry or {},
        series=series,
    )
