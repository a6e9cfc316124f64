"""The one place the CLI's rich consoles are made: wide when the output is not a terminal.

rich lays a table out to the terminal's width, and when the output is a pipe or a file (CI logs,
``| less``, ``> out.txt``) it assumes 80 columns: cells are cut ("mann-whitn…", "threads=1…": 12
or 16?). Piped output has no width to respect, so it gets a wide one and nothing is cut; a set
``COLUMNS`` still wins, as it does for rich and pytest. The run's own reporter keeps the
terminal's width: its ``=====`` separators are as wide as pytest's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console

PIPE_WIDTH = 4096


def make_console(*, stderr: bool = False, min_width: int = 0, **options: Any) -> Console:
    """A ``rich.console.Console`` (``highlight`` off unless asked) for a command's output;
    ``min_width``: wide tables that would rather overflow a narrow terminal than be cut."""
    options.setdefault("highlight", False)
    stream = sys.stderr if stderr else sys.stdout
    if "width" not in options and not os.environ.get("COLUMNS") and not _is_terminal(stream):
        options["width"] = PIPE_WIDTH
    console = Console(stderr=stderr, **options)
    if console.width < min_width:
        console.width = min_width
    return console


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
