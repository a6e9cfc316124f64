"""textstat as its help describes it, run as a subprocess: exit 0 and JSON for every text it
can decode, exit 2 and a message for a text it cannot, nothing else."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import testfleet
from testfleet import Bool, Choice, Int, String

TOOL = Path(__file__).resolve().parent.parent / "textstat.py"
TEXT_CHARS = string.ascii_letters + string.digits + " \t\n.,;:!?-'\"äöüßéñ"


def textstat(*args: str, text: str, encoding: str = "utf-8", env: dict | None = None
             ) -> subprocess.CompletedProcess:
    data = text.encode(encoding, errors="replace")
    return subprocess.run([sys.executable, "-I", "-S", str(TOOL), *args], input=data, capture_output=True,
                          timeout=30, env={**os.environ, **(env or {})})


def test_counts_words() -> None:
    ran = textstat("words", text="one two  three\n")
    assert ran.returncode == 0 and json.loads(ran.stdout) == {"words": 3}


def test_bad_width_is_refused() -> None:
    ran = textstat("wrap", "--width", "0", text="abc")
    assert ran.returncode == 2 and b"--width" in ran.stderr


@testfleet.explore(mode=Choice(["words", "lines", "chars", "upper", "wrap"]),
                   text=String(0, 300, charset=TEXT_CHARS, default="Hello world.\nSecond line."),
                   width=Int(1, 120, default=40), encoding=Choice(["utf-8", "latin-1", "ascii"]),
                   strip=Bool(default=False),
                   locale=Choice(["C.UTF-8", "en_US.UTF-8", "de_DE.UTF-8", "fr_FR.UTF-8", "tr_TR.UTF-8",
                                  "el_GR.UTF-8", "ja_JP.UTF-8"]))
def test_any_text(mode: str, text: str, width: int, encoding: str, strip: bool, locale: str) -> None:
    args = [mode, "--width", str(width), "--encoding", encoding] + (["--strip"] if strip else [])
    ran = textstat(*args, text=text, encoding=encoding, env={"LC_ALL": locale})
    assert ran.returncode in (0, 2), ran.stderr.decode(errors="replace")
    if ran.returncode == 0:
        result = json.loads(ran.stdout)
        if mode == "wrap":
            assert all(len(line) <= width for line in result["lines"]), result
    else:
        assert ran.stderr.startswith(b"textstat: "), ran.stderr
