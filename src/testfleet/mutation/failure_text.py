"""The text of a failure message that tells one problem from another
(:func:`normalise_message`), shared by failure clusters
(:mod:`testfleet.analysis.failures`) and minimisation (:mod:`testfleet.mutation.minimize_job`).

Only what varies between occurrences of one problem is replaced: absolute paths ``<path>``,
timestamps ``<time>``, UUIDs ``<id>``, memory addresses ``<addr>``, long hex runs mixing letters
and digits ``<id>``, numbers and ports ``<n>`` - except HTTP status codes and numbers inside names
(``latin-1``), which tell problems apart. Quoted text is kept (a literal over ``QUOTE_CHARS``
characters cut to its start), so two different server error texts stay apart. Of a message only
its :func:`headline` counts: the first line, or, when that line opens a traceback (a
subprocess's stderr echoed by an assertion), the exception line that ends it.
"""

from __future__ import annotations

import re

__all__ = ["QUOTE_CHARS", "TRACEBACK", "headline", "normalise_message"]

_PATH = re.compile(r"(?<![\w.:/~<>\\-])(?:~?/[\w.~+@-][^\s'\"(),:;<>\[\]]*|[A-Za-z]:\\[^\s'\"(),:;<>]*)")
_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
                   r"(?![\w])|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_ADDR = re.compile(r"\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"(?<![0-9A-Za-z.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![0-9A-Za-z])")
_HEX_ID = re.compile(r"(?<![0-9A-Za-z.])(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}(?![0-9A-Za-z])")
_DIGITS = re.compile(r"\d+")
QUOTE_CHARS = 60   # a quoted literal longer than this is kept as its start
_LONG_QUOTED = re.compile(r"'([^'\n]{%d,})'|\"([^\"\n]{%d,})\"" % (QUOTE_CHARS + 1, QUOTE_CHARS + 1))
# an HTTP status: "status 503", "HTTP 500", "code=404", "500 Internal Server Error"
_STATUS = re.compile(r"(?<![\w.])((?i:http|status(?:[ _]?code)?|code|response)\W{0,3})([1-5]\d\d)(?![\w.])"
                     r"|(?<![\w.])([1-5]\d\d)(?= [A-Z][a-z])"
                     # a short number that is part of a name: latin-1, utf-8, sha-256
                     r"|(?<=[A-Za-z]-)(?<![\d.][eE]-)(\d{1,3})(?![\w.])")

_SHIELD = str.maketrans("0123456789", "abcdefghij")
_UNSHIELD = str.maketrans("abcdefghij", "0123456789")

TRACEBACK = "Traceback (most recent call last):"


def headline(text: str) -> str:
    """The line of a message that tells failures apart: its first non-empty line; or, when that
    line opens a traceback (a subprocess's stderr echoed by an assertion: every crash of the
    program starts the same way), the exception line that ends the traceback, after what came
    before the header (``AssertionError: Fault: ...``)."""
    lines = [s for s in (text or "").splitlines() if s.strip()]
    if not lines:
        return ""
    first = lines[0].strip()
    if not first.endswith(TRACEBACK):
        return first
    frames: int | None = None  # the indent of the traceback's "File ..." lines
    for line in lines[1:]:
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith("File "):
            frames = indent if frames is None else min(frames, indent)
        elif frames is not None and indent < frames:
            return f"{first.removesuffix(TRACEBACK)}{line.strip()}"
    return first


def normalise_message(text: str) -> str:
    """The :func:`headline` of ``text`` with what varies between occurrences replaced by
    placeholders."""
    line = headline(text)
    # a long literal (a 2,000-character input echoed back) is kept as its start: the start
    # tells messages apart, the length of the input does not
    line = _LONG_QUOTED.sub(lambda m: f"{m.group(0)[0]}{(m.group(1) or m.group(2))[:QUOTE_CHARS]}…"
                            f"{m.group(0)[0]}", line)
    # status codes and numbers in names are kept (a 500 and a 503 are two problems, latin-1 is
    # not latin-2): shielded from the number placeholder
    line = _STATUS.sub(lambda m: (m.group(1) or "") + "\ue000"
                       + (m.group(2) or m.group(3) or m.group(4)).translate(_SHIELD), line)
    line = _PATH.sub("<path>", line)
    line = _TIME.sub("<time>", line)
    line = _UUID.sub("<id>", line)
    line = _ADDR.sub("<addr>", line)
    line = _HEX_ID.sub("<id>", line)
    line = _NUMBER.sub("<n>", line)
    line = _DIGITS.sub("<n>", line)
    line = re.sub("\ue000([a-j]{1,3})", lambda m: m.group(1).translate(_UNSHIELD), line)
    return " ".join(line.split())[:300]
