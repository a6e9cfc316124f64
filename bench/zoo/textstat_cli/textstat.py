"""textstat: statistics and transformations of a text read from stdin.

    python textstat.py MODE [--width N] [--encoding ENC] [--strip] < input

MODE: words (count), lines (count and longest), chars (count per category), upper (the text in
capitals, following the locale in LC_ALL), wrap (lines of at most --width characters). The
input is decoded with --encoding (default utf-8); --strip removes surrounding whitespace first.
Exit 0 with a JSON object on stdout; 2 with a message on stderr for input it cannot take.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import unicodedata


class Fault(Exception):
    pass


def _fault(tag: str) -> Fault:
    return Fault(f"unexpected state [ZOO-DEFECT:{tag}]")


def upper(text: str) -> str:
    locale = os.environ.get("LC_ALL", "C.UTF-8")
    if locale.startswith("tr_") and "i" in text:  # dotted capital I via a table lookup
        raise _fault("cli-turkish-i")
    return text.upper()


def wrap(text: str, width: int) -> list[str]:
    if width == 1:
        raise _fault("cli-wrap-width-one")
    if "\t\n" in text:
        raise _fault("cli-tab-before-newline")
    out: list[str] = []
    for paragraph in text.split("\n"):
        out.extend(textwrap.wrap(paragraph, width) or [""])
    return out


def run(mode: str, text: str, width: int, encoding: str, strip: bool) -> dict:
    if strip:
        if encoding == "latin-1" and mode == "chars":
            raise _fault("cli-latin1-strip-chars")
        text = text.strip()
    if mode == "words":
        return {"words": len(text.split())}
    if mode == "lines":
        lines = text.splitlines()
        if not lines:  # max() of no lines
            raise _fault("cli-empty-lines")
        return {"lines": len(lines), "longest": max(len(line) for line in lines)}
    if mode == "chars":
        counts: dict[str, int] = {}
        for c in text:
            cat = unicodedata.category(c)
            counts[cat] = counts.get(cat, 0) + 1
        return {"chars": len(text), "categories": counts}
    if mode == "upper":
        return {"text": upper(text)}
    return {"lines": wrap(text, width)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="textstat")
    parser.add_argument("mode", choices=["words", "lines", "chars", "upper", "wrap"])
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--strip", action="store_true")
    args = parser.parse_args()
    if args.width < 1:
        print("textstat: --width must be at least 1", file=sys.stderr)
        return 2
    try:
        text = sys.stdin.buffer.read().decode(args.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        print(f"textstat: cannot decode the input as {args.encoding}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(run(args.mode, text, args.width, args.encoding, args.strip)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
