"""pytest's "short test summary info": one line per report of the kinds ``-r`` asks for.

Each worker records, for every report of an item, the category and the word pytest's
``pytest_report_teststatus`` gave it (``FAILED``, ``SUBFAILED[x] (i=1)``, ``XFAIL``,
``SUBSKIPPED``...) and, for a skip, where and why (see ``worker_results.result_of``). Here
those entries are laid out in pytest's order: one group per ``-r`` character (``-ra`` is
``sxXEf``, the default ``fE``), skips folded by place and reason as ``SKIPPED [2] file:line: why``.
Results without that detail (a timeout, a crash, a run stored by an older version) fall back on
their categories and message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.markup import escape

from testfleet.model import Result

DEFAULT_REPORTCHARS = "fE"
# (-r character, the categories it shows); testfleet's own timeout and crashed go with failures
_GROUPS = {"f": ("failed", "timeout", "crashed"), "E": ("error",), "s": ("skipped",),
           "x": ("xfailed",), "X": ("xpassed",), "p": ("passed",)}
_FALLBACK_WORD = {"failed": "FAILED", "error": "ERROR", "skipped": "SKIPPED", "xfailed": "XFAIL",
                  "xpassed": "XPASS", "passed": "PASSED", "timeout": "TIMEOUT", "crashed": "CRASHED"}
_STYLE = {"failed": "red", "error": "red", "timeout": "red", "crashed": "red", "passed": "green"}


@dataclass(frozen=True)
class Entry:
    """One report in the summary: its category, pytest's word for it, the test and the reason."""

    category: str
    word: str
    nodeid: str
    message: str = ""
    skip: tuple[str, int | None, str] | None = None


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""


def _entry(result: Result, data: dict[str, Any]) -> Entry:
    category = str(data["category"])
    skip = data.get("skip")
    message = data.get("wasxfail") if category in ("xfailed", "xpassed") else data.get("message", "")
    return Entry(category, str(data.get("word") or _FALLBACK_WORD.get(category, category.upper())),
                 result.nodeid, str(message or "").strip(),
                 (str(skip[0]), skip[1], str(skip[2])) if skip else None)


def entries(result: Result) -> list[Entry]:
    """The result's reports that have a category, in the order pytest reported them."""
    found: list[Entry] = []
    detailed = False
    for name in ("setup", "call", "teardown"):
        phase = result.phases.get(name)
        if not isinstance(phase, dict):
            continue
        for sub in phase.get("subtests", ()):
            detailed = True
            if sub.get("category"):
                found.append(_entry(result, sub))
        if phase.get("category"):
            detailed = True
            found.append(_entry(result, phase))
    if detailed:
        return found
    for category in result.categories or [result.outcome.value]:
        skip = (result.file, result.line, result.message) if category == "skipped" else None
        found.append(Entry(category, _FALLBACK_WORD.get(category, category.upper()), result.nodeid,
                           _first_line(result.message), skip))
    return found


def _skipped_lines(skips: list[Entry]) -> list[str]:
    """pytest's folded skips: ``SKIPPED [count] path:line: reason`` per place and reason."""
    folded: dict[tuple[str, int | None, str], int] = {}
    for entry in skips:
        path, line, reason = entry.skip or ("", None, entry.message)
        reason = reason.removeprefix("Skipped: ")
        folded[(path, line, reason)] = folded.get((path, line, reason), 0) + 1
    word = f"[yellow]{escape(skips[0].word)}[/yellow]"
    return [f"{word} [{count}] {escape(path)}{f':{line}' if line is not None else ''}: {escape(reason)}"
            for (path, line, reason), count in folded.items()]


def message_part(head: str, message: str, width: int | None) -> str:
    """`` - message`` after ``head`` (``FAILED tests/x.py::t``) as pytest's short summary has it
    for failures and errors: whole when ``width`` is None (on CI, or with ``-vv``); otherwise
    cut with ``...`` so the line fits ``width`` cells, or left out when not even ``...`` fits."""
    if not message:
        return ""
    if width is None:
        return f" - {message}"
    message = _first_line(message)
    room = width - cell_len(head) - 3  # what is left after " - "
    if room < 3:
        return ""
    if cell_len(message) <= room:
        return f" - {message}"
    cut = message
    while cut and cell_len(cut) > room - 3:
        cut = cut[:-1]
    return f" - {cut}..."


def summary_lines(results: Iterable[Result], collect_errors: list[dict[str, Any]],
                  reportchars: str = DEFAULT_REPORTCHARS, width: int | None = None) -> list[str]:
    """The lines (rich markup) of the short summary for these final results; failure and error
    messages fit ``width`` (None: whole)."""
    all_entries = [Entry("error", "ERROR", str(e["nodeid"])) for e in collect_errors]
    flaky: list[Result] = []
    for result in results:
        all_entries.extend(entries(result))
        if result.flaky:
            flaky.append(result)
    lines: list[str] = []
    for char in reportchars:
        categories = _GROUPS.get(char)
        if categories is None:
            continue
        group = [e for e in all_entries if e.category in categories]
        if not group:
            continue
        if char == "s":
            lines.extend(_skipped_lines(group))
            continue
        for entry in group:
            style = _STYLE.get(entry.category, "yellow")
            fits = width if char in ("f", "E") else None  # pytest trims only these
            tail = message_part(f"{entry.word} {entry.nodeid}", entry.message, fits)
            lines.append(f"[{style}]{escape(entry.word)}[/{style}] {escape(entry.nodeid)}{escape(tail)}")
    lines.extend(f"[yellow]FLAKY[/yellow] {escape(r.nodeid)} - passed on attempt {r.attempt}" for r in flaky)
    return lines
