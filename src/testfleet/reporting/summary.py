"""Counting results the way pytest's terminal does, its summary line, exit code, and atomic writes.

Every report writer (JUnit, JSON, Markdown) counts through :func:`count_outcomes`, so a report and
the terminal never disagree, and all of them write through :func:`atomic_write_text`, so a crash
leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from testfleet.atomic import atomic_write_text  # noqa: F401  (re-exported: reports write through it)
from testfleet.model import Outcome, Result

# pytest's order of the words in its last line (``KNOWN_TYPES`` in _pytest/terminal.py, pytest 9);
# words it does not know follow in the order first seen. testfleet's own words come after them.
PYTEST_ORDER: tuple[str, ...] = (
    "failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings", "error",
    "subtests passed", "subtests failed", "subtests skipped",
)
TESTFLEET_ORDER: tuple[str, ...] = ("crashed", "timeout")
# Outcomes that testfleet gives a test pytest never reported on; they count as their own word.
OWN_WORDS = frozenset({Outcome.timeout.value, Outcome.crashed.value})
# Counted words that make pytest exit 1 (``session.testsfailed``).
FAILING_WORDS = frozenset({"failed", "error", "timeout", "crashed", "subtests failed"})
# Words that are not tests: they never make "tests ran".
NOT_TESTS = frozenset({"deselected", "warnings"})

# pytest's exit codes (pytest.ExitCode).
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INTERNAL, EXIT_USAGE, EXIT_NO_TESTS = 0, 1, 2, 3, 4, 5


def final_results(results: Iterable[Result]) -> list[Result]:
    """The results that count: the final attempt of every test, in the order given."""
    return [r for r in results if r.final]


def result_words(result: Result) -> list[str]:
    """The words one result adds to the summary: its pytest categories, or its outcome."""
    outcome = str(result.outcome)
    if outcome in OWN_WORDS:
        return [outcome]
    words = [c for c in result.categories if c]
    return words or [outcome]


def count_outcomes(results: Iterable[Result], collect_errors: Sequence[Any] = (),
                   deselected: int = 0) -> dict[str, int]:
    """Count final results as pytest's terminal does: each category of each final result once.

    A call failure plus a teardown error counts ``failed`` and ``error``; results without
    categories count their outcome; ``timeout`` and ``crashed`` count as their own words.
    Collection errors count as ``error`` and ``deselected`` is added when non-zero, as pytest does.
    """
    counts: dict[str, int] = {}
    for result in final_results(results):
        for word in result_words(result):
            counts[word] = counts.get(word, 0) + 1
    if collect_errors:
        counts["error"] = counts.get("error", 0) + len(collect_errors)
    if deselected:
        counts["deselected"] = counts.get("deselected", 0) + deselected
    return counts


def _pluralize(count: int, word: str) -> str:
    # pytest pluralises only "error" and "warnings" (kept as "warning" when 1); others are verbs.
    if word == "error":
        return f"{count} error" if count == 1 else f"{count} errors"
    if word == "warnings":
        return f"{count} warning" if count == 1 else f"{count} warnings"
    return f"{count} {word}"


def format_duration(seconds: float) -> str:
    """A session duration the way pytest prints it: ``0.12s`` or ``75.00s (0:01:15)``."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds:.2f}s ({datetime.timedelta(seconds=int(seconds))})"


def ordered_words(counts: Mapping[str, int]) -> list[str]:
    """The words of ``counts`` with a non-zero count, in pytest's order, then testfleet's."""
    known = PYTEST_ORDER + TESTFLEET_ORDER
    words = [w for w in known if counts.get(w, 0) > 0]
    words += [w for w, n in counts.items() if w and w not in known and w != "flaky" and n > 0]
    return words


def summary_parts(counts: Mapping[str, int], flaky: int = 0) -> list[str]:
    """The comma-separated parts of the summary line, e.g. ``["1 failed", "2 errors"]``."""
    parts = [_pluralize(counts[w], w) for w in ordered_words(counts)]
    if flaky:
        parts.append(f"{flaky} flaky")
    return parts


def summary_line(counts: Mapping[str, int], duration: float, flaky: int = 0) -> str:
    """pytest's last line: ``1 failed, 3 passed, 2 errors in 0.12s`` (``no tests ran`` if empty).

    ``crashed``, ``timeout`` and then ``flaky`` follow pytest's own words.
    """
    parts = summary_parts(counts, flaky)
    text = ", ".join(parts) if parts else "no tests ran"
    return f"{text} in {format_duration(duration)}"


def exit_code_for(counts: Mapping[str, int], collect_errors: Sequence[Any] = (),
                  interrupted: bool = False) -> int:
    """pytest's exit code for these counts: 2 interrupted or collection errors, 1 any failure
    (failed, error, timeout, crashed; a strict xpass is already ``failed``), 5 no tests, else 0."""
    if interrupted or collect_errors:
        return EXIT_INTERRUPTED
    if any(counts.get(w, 0) > 0 for w in FAILING_WORDS):
        return EXIT_FAILED
    if not any(n > 0 for w, n in counts.items() if w not in NOT_TESTS and w != "flaky"):
        return EXIT_NO_TESTS
    return EXIT_OK
