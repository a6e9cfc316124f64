"""User regular expressions (a spec's ``message``, a scenario's ``regex``), run in linear time.

Python's ``re`` backtracks: ``(a+)+$`` against 41 characters ran for minutes. User patterns are
compiled with RE2 (``google-re2``), whose matching time grows linearly with the text whatever the
pattern. RE2 has no backreferences (``\\1``) or lookaround (``(?=...)``); such a pattern is
refused with one message saying so, instead of being run by a backtracking engine.
"""

from __future__ import annotations

from typing import Any, Protocol

import re2

# defined in testfleet.errors; re-exported from its old home
from testfleet.errors import PatternError as PatternError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would also print its complaint to stderr


class Pattern(Protocol):
    pattern: str

    def search(self, text: str) -> Any: ...


def compile_pattern(text: Any) -> Pattern:
    """``text`` compiled by RE2; PatternError naming the problem otherwise."""
    if not isinstance(text, str):
        raise PatternError(f"a pattern is text, not {type(text).__name__}")
    try:
        return re2.compile(text, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and \
            isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"{detail} (patterns run on RE2, in linear time: no backreferences "
                           "such as \\1, no lookahead or lookbehind)") from None
