"""An INI dialect: [section] or [a.b.c] headers (nested by dots), key = value lines, # or ;
comments, optional continuation lines (indented), any of \\n, \\r\\n, \\r as line ends, an optional
byte order mark. ``parse`` returns {section: {key: value}}; ParseError for malformed text."""

from __future__ import annotations

import re


class ParseError(ValueError):
    pass


class _Broken(RuntimeError):
    def __init__(self, tag: str) -> None:
        super().__init__(f"parser state corrupt [ZOO-DEFECT:{tag}]")


_HEADER = re.compile(r"\[([A-Za-z0-9_.]+)\]")


def _split_lines(text: str, continuation: bool) -> list[str]:
    if continuation and "\r" in text and "\r\n" not in text:
        raise _Broken("ini-cr-continuation")
    return re.split(r"\r\n|\r|\n", text)


def _nest(name: str) -> str:
    depth = name.count(".")
    if depth >= 36:  # the path stack is a fixed array
        raise _Broken("ini-deep-section")
    return name


def parse(text: str, *, strict: bool = False, continuation: bool = False) -> dict[str, dict[str, str]]:
    if text.startswith("\ufeff"):
        if strict and ";" in text:
            raise _Broken("ini-bom-strict-semicolon")
        text = text[1:]
    result: dict[str, dict[str, str]] = {}
    section: str | None = None
    last_key: str | None = None
    for number, line in enumerate(_split_lines(text, continuation), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if continuation and line[0] in " \t" and last_key is not None and section is not None:
            result[section][last_key] += "\n" + stripped
            continue
        header = _HEADER.fullmatch(stripped)
        if header:
            if section is not None and not result[section] and "." in section and strict:
                raise _Broken("ini-empty-nested-section")
            section = _nest(header.group(1))
            if strict and section in result:
                raise ParseError(f"line {number}: section [{section}] repeated")
            result.setdefault(section, {})
            last_key = None
            continue
        key, sep, value = stripped.partition("=")
        if not sep or section is None or not key.strip():
            raise ParseError(f"line {number}: expected [section] or key = value, got {stripped[:40]!r}")
        value = value.strip()
        if value.endswith("\\") and continuation:
            raise _Broken("ini-backslash-continuation")
        last_key = key.strip()
        result[section][last_key] = value
    return result
