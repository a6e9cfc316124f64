"""Markdown run summary for people and CI pages (GitHub's job summary, GitLab notes, chat).

``write_markdown`` writes the file and, inside GitHub Actions (``GITHUB_STEP_SUMMARY`` set),
appends the same text to the job summary, the way pytest-md and similar plugins do.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testfleet.model import Result, Run, RunStatus
from testfleet.reporting.summary import (
    atomic_write_text,
    count_outcomes,
    exit_code_for,
    final_results,
    format_duration,
    ordered_words,
    summary_line,
)

MAX_FAILURE_ROWS = 100  # GitHub caps a step summary at 1 MiB; keep the page readable too
SLOWEST = 10
_EMOJI = {0: "✅", 1: "❌", 2: "⚠️", 5: "⚪"}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MD_PUNCT = re.compile(r"[\\`*_\[\]]")  # would start emphasis, code or links in a plain cell
_VERDICT = {0: "passed", 1: "failed", 2: "interrupted", 5: "no tests ran"}


def cell(text: object, code: bool = False) -> str:
    """A safe table cell: one line, pipes escaped, HTML neutralised (optionally as code)."""
    value = " ".join(_CONTROL.sub("", str(text)).split())
    if code and "`" not in value:
        return "`" + value.replace("|", "\\|") + "`" if value else ""
    value = _MD_PUNCT.sub(r"\\\g<0>", value).replace("|", "\\|")
    return html.escape(value, quote=False)


def first_line(result_message: str, longrepr: str = "") -> str:
    """The first non-empty line of the message, else of the traceback's ``E`` lines or text."""
    for line in result_message.splitlines():
        if line.strip():
            return line.strip()
    lines = [line.strip() for line in longrepr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()
    return lines[0] if lines else ""


def _longrepr(result: Result) -> str:
    """The result's traceback text, else that of its first failed phase (call, setup, teardown)."""
    if result.longrepr:
        return result.longrepr
    for name in ("call", "setup", "teardown"):
        phase = result.phases.get(name) or {}
        if phase.get("outcome") == "failed" and phase.get("longrepr"):
            return str(phase["longrepr"])
    return ""


def _failures(finals: Sequence[Result], collect_errors: Sequence[dict[str, Any]]) -> list[str]:
    rows = [(str(e.get("nodeid", "")), "error (collection)", first_line("", str(e.get("longrepr") or "")))
            for e in collect_errors]
    for r in finals:
        if not (r.outcome.is_failure or "failed" in r.categories or "error" in r.categories):
            continue
        subtests = [sub for sub in (r.phases.get("call") or {}).get("subtests", ()) if sub.get("outcome") == "failed"]
        rows += [(f"{r.nodeid} {sub.get('description', '')}", "subtest failed",
                  first_line(str(sub.get("message", "")), str(sub.get("longrepr", "")))) for sub in subtests]
        if not subtests or r.longrepr:  # the test's own failure, beside its failed subtests
            rows.append((r.nodeid, str(r.outcome), first_line(r.message, _longrepr(r))))
    if not rows:
        return []
    lines = ["### Failures", "", "| test | outcome | message |", "| --- | --- | --- |"]
    lines += [f"| {cell(n, True)} | {cell(o)} | {cell(m)} |" for n, o, m in rows[:MAX_FAILURE_ROWS]]
    if len(rows) > MAX_FAILURE_ROWS:
        lines += ["", f"… and {len(rows) - MAX_FAILURE_ROWS} more (see the JUnit or JSON report)."]
    return lines + [""]


def _flaky(finals: Sequence[Result], results: Sequence[Result]) -> list[str]:
    flaky = [r for r in finals if r.flaky]
    if not flaky:
        return []
    lines = ["### Flaky tests", "", "Failed first, then passed on a rerun:", ""]
    for r in flaky:
        tries = sum(1 for a in results if a.variant_id == r.variant_id and a.nodeid == r.nodeid)
        lines.append(f"- {cell(r.nodeid, True)} (passed on attempt {r.attempt} of {max(tries, r.attempt)})")
    return lines + [""]


def _slowest(finals: Sequence[Result]) -> list[str]:
    slow = sorted(finals, key=lambda r: r.duration, reverse=True)[:SLOWEST]
    if not slow:
        return []
    lines = [f"### Slowest {len(slow)} tests", "", "| duration | test | outcome |", "| ---: | --- | --- |"]
    lines += [f"| {r.duration:.2f}s | {cell(r.nodeid, True)} | {cell(r.outcome)} |" for r in slow]
    return lines + [""]


def markdown_summary(run: Run, results: Sequence[Result],
                     collect_errors: Sequence[dict[str, Any]] = ()) -> str:
    """The run as Markdown: verdict heading, counts, failures, flaky tests, slowest tests, run facts."""
    finals = final_results(results)
    counts = count_outcomes(results, collect_errors, run.deselected)
    flaky = sum(1 for r in finals if r.flaky)
    code = run.exit_code
    if code is None:
        code = exit_code_for(counts, collect_errors, run.status == RunStatus.interrupted)
    emoji, verdict = _EMOJI.get(code, "❌"), _VERDICT.get(code, f"exit code {code}")
    lines = [f"## {emoji} testfleet run {cell(run.run_id)}: {verdict}", "",
             f"**{cell(summary_line(counts, run.duration, flaky))}**", ""]
    words = ordered_words(counts)
    if words:
        lines += ["| outcome | count |", "| --- | ---: |"]
        lines += [f"| {w} | {counts[w]} |" for w in words]
        if flaky:
            lines.append(f"| flaky | {flaky} |")
        lines.append("")
    lines += _failures(finals, collect_errors)
    lines += _flaky(finals, results)
    lines += _slowest(finals)
    facts = [f"run `{cell(run.run_id)}`", f"seed `{run.seed}`",
             f"{run.workers} worker{'s' if run.workers != 1 else ''} ({cell(run.backend)})",
             f"duration {format_duration(run.duration)}"]
    if run.git_sha:
        facts.append(f"commit `{cell(run.git_sha[:12])}`")
    rerun = " ".join(["testfleet run", *run.paths, f"--seed {run.seed}"])
    lines += [" · ".join(facts), "",
              f"Reproduce: `{rerun}` · replay one variant: `testfleet replay <variant-id>`", ""]
    # Lone surrogates cannot be written as UTF-8; they become "?" rather than fail the report.
    return "\n".join(lines).encode("utf-8", "replace").decode("utf-8")


def write_markdown(path: str | os.PathLike[str], run: Run, results: Sequence[Result],
                   collect_errors: Sequence[dict[str, Any]] = ()) -> Path:
    """Write the Markdown summary to ``path`` atomically, and append it to the GitHub Actions
    job summary when ``GITHUB_STEP_SUMMARY`` names a file; return ``path``."""
    text = markdown_summary(run, results, collect_errors)
    written = atomic_write_text(path, text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    return written
