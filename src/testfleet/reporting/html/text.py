"""User text made safe for the page: escaped for HTML, cut to a size, JSON that cannot end a script.

Everything a test or a user wrote (node ids, messages, tracebacks, captured output, parameter
values) reaches the page through :func:`esc` or :func:`script_json`. Control characters other
than tab and newline are shown as their Unicode control pictures (``␛`` for ESC), so colour codes
and NULs in captured output stay visible and the page stays well-formed.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

__all__ = ["cut", "esc", "script_json", "visible"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\u2421" if code == 0x7F else chr(0x2400 + code)


def visible(text: str) -> str:
    """``text`` with CRLF as LF, other controls as their pictures, and lone surrogates (which
    UTF-8 cannot encode) as U+FFFD."""
    text = _CONTROL.sub(_picture, text.replace("\r\n", "\n"))
    return _SURROGATE.sub("\ufffd", text)


def esc(value: object) -> str:
    """Any value as HTML text or attribute value: visible, then escaped (quotes too)."""
    return html.escape(visible(str(value)), quote=True)


def cut(text: str, limit: int) -> tuple[str, str, int]:
    """``text`` cut to ``limit`` characters: (start, end, characters cut between them). The
    start (a quarter) and the end (the rest) are kept: a traceback's end says what failed,
    output's start how it began. Uncut text is (text, "", 0)."""
    if len(text) <= limit:
        return text, "", 0
    head = limit // 4
    return text[:head], text[len(text) - (limit - head):], len(text) - limit


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` written as
    ``\\u003c``... (the same string to JSON.parse), so no text can close the element or open a
    comment, whatever a test printed."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # U+2028/2029 are legal in JSON strings; escaped so the block is also plain JavaScript
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return _SURROGATE.sub("\ufffd", text)
