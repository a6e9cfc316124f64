"""The ``key value`` directive format of redis.conf, sshd_config, postgresql.conf and the like.

One directive a line: a key, then whitespace or ``=`` (postgresql.conf writes ``key = value``),
then the value, the rest of the line. Blank lines and lines starting with ``#`` are comments, and
so is a ``#`` after whitespace outside quotes (postgresql.conf's ``shared_buffers = 128MB  # min``).
The value is kept as written, quotes included (``requirepass "a b"``, ``save ""``), so that
writing it back gives the same directive. A key given several times (redis's ``save``,
``rename-command``, sshd's ``HostKey``) reads as the list of its values, in file order.

Data: ``{key: str}`` or ``{key: [str, ...]}``. The writer takes str, int, float, bool and None
(written empty) as values, a non-empty list of them for a repeated directive, and writes
``key value`` lines (what all three programs accept). It refuses, naming the key, whatever would
read back changed: a key with whitespace, ``=``, ``#`` or nothing in it, a value with a line
break, surrounding whitespace, or a ``#`` that would start a comment. Sections (``Match`` blocks
in sshd_config) are not modelled: their directives read as top-level keys.
"""

from __future__ import annotations

import re
from typing import Any

from testfleet.configs.textformats import SCALARS, refuse, scalar_text
from testfleet.errors import ConfigError

__all__ = ["looks_like_directives", "read_directives", "write_directives"]

_KEY = re.compile(r"[^\s=#\"']+")
_SEPARATOR = re.compile(r"[ \t]*=[ \t]*|[ \t]+")
_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _without_comment(text: str) -> str:
    """``text`` up to a ``#`` that follows whitespace outside quotes, right-stripped."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            if char == quote and (i == 0 or text[i - 1] != "\\"):
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _directive(line: str) -> tuple[str, str] | None:
    """``(key, value)`` of one line, or None when it is no directive."""
    body = _without_comment(line.strip())
    if not body:
        return None
    key = _KEY.match(body)
    if key is None:
        return None
    rest = body[key.end():]
    if not rest:
        return key.group(), ""
    separator = _SEPARATOR.match(rest)
    if separator is None:
        return None
    return key.group(), rest[separator.end():]


def looks_like_directives(text: str) -> bool:
    """Whether every line that is not blank or a comment reads as a directive, and some does
    (and no ``[section]`` header: that is INI)."""
    seen = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") or _directive(line) is None:
            return False
        seen = True
    return seen


def read_directives(text: str, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = _directive(line)
        if found is None:
            raise ConfigError(f"invalid directive line {stripped[:60]!r}", source=source,
                              place=f"line {number}",
                              expected="key value, key = value, or a # comment")
        key, value = found
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


def write_directives(data: Any, source: str) -> str:
    if not isinstance(data, dict):
        raise refuse(f"directive data is a mapping of keys, not {type(data).__name__}", source,
                     expected="{key: value or [values]}")
    lines = []
    for key, value in data.items():
        if not isinstance(key, str) or _KEY.fullmatch(key) is None or key.startswith("["):
            raise refuse(f"{key!r} cannot be a directive key", source, (key,),
                         expected="a name without whitespace, '=', '#' or quotes, not "
                                  "starting with '['")
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            raise refuse("an empty list writes no directive", source, (key,),
                         expected="a value, or a non-empty list for a repeated directive")
        if isinstance(value, list | tuple) and len(value) == 1:
            raise refuse("a one-item list reads back as the item itself", source, (key,),
                         expected="the value alone, or two or more values")
        for index, item in enumerate(values):
            parts = (key, index) if isinstance(value, list | tuple) else (key,)
            if isinstance(item, dict | list | tuple):
                raise refuse("a directive's value is one line of text", source, parts,
                             expected=SCALARS)
            text = scalar_text(item, "the directive format", source, parts)
            line = f"{key} {text}" if text else key
            if _BREAKS.search(text) or _directive(line) != (key, text):
                raise refuse("this value would read back changed", source, parts,
                             expected="one line, no surrounding whitespace, no leading '=', "
                                      "no ' #' outside quotes")
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""
