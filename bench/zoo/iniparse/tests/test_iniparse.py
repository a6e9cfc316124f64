"""iniparse reads back what a writer of its dialect produces, whatever the line ends, comments,
nesting and options; malformed text is a ParseError."""

from __future__ import annotations

import string

import pytest
from iniparse import ParseError, parse

import testfleet
from testfleet import Bool, Choice, Int, String

VALUE_CHARS = string.ascii_letters + string.digits + " =:#;\"'\\/-_."


def test_simple() -> None:
    assert parse("[a]\nx = 1\n") == {"a": {"x": "1"}}


def test_key_outside_section_is_an_error() -> None:
    with pytest.raises(ParseError, match="line 1"):
        parse("x = 1\n")


@testfleet.explore(sections=Int(0, 6, default=2), keys=Int(0, 6, default=2),
                   value=String(0, 60, charset=VALUE_CHARS, default="hello"),
                   newline=Choice(["\n", "\r\n", "\r"]), comment=Choice(["#", ";"]),
                   depth=Int(0, 40, default=0), bom=Bool(default=False), strict=Bool(default=False),
                   continuation=Bool(default=False))
def test_reads_back_what_was_written(sections: int, keys: int, value: str, newline: str, comment: str,
                                     depth: int, bom: bool, strict: bool, continuation: bool) -> None:
    lines = [f"{comment} written by the test"]
    expected: dict[str, dict[str, str]] = {}
    for s in range(sections):
        name = ".".join([f"s{s}"] + [f"n{d}" for d in range(depth)])
        lines.append(f"[{name}]")
        expected[name] = {}
        for k in range(keys):
            lines.append(f"key{k} = {value}")
            expected[name][f"key{k}"] = value.strip()
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    assert parse(text, strict=strict, continuation=continuation) == expected
