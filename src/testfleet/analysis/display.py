"""How analysis shows values: numbers without noise (``12``, not ``12.0``), long strings as
their start and length, percentages, and values made JSON-safe. Split from ``findings.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from testfleet.jsonable import jsonable

#: Values made JSON-safe: one spelling for every analysis module (re-exported).
to_json = jsonable



def number(value: float) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


SHOWN_CHARS = 40   # a value longer than this is shown abbreviated


def abbreviate(value: Any, width: int = SHOWN_CHARS) -> str:
    """A value as a reader needs to see it: a 2,000-character string as its first ``width``
    characters and its length (``'aaaa…(2000 chars)'``); anything else as ``str``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= width:
        return text
    return f"{text[:width]}…({len(text)} chars)"


def abbreviate_params(params: Mapping[str, Any], width: int = SHOWN_CHARS) -> str:
    """``{name=value, ...}`` with every long value abbreviated (``memo='aaaa'…(2000 chars)``)."""
    def shown(value: Any) -> str:
        if isinstance(value, str):
            return repr(value) if len(value) <= width else \
                f"{value[:width]!r}…({len(value)} chars)"
        return abbreviate(value, width)
    return "{" + ", ".join(f"{k}={shown(v)}" for k, v in params.items()) + "}"


def percent(rate: float) -> str:
    return f"{rate:.0%}" if rate >= 0.01 or rate == 0 else f"{100 * rate:.2g}%"
