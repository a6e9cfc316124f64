#!/usr/bin/env python
"""A collaborating fleet (issue 20), one part at a time: ``--part NAME`` (repeatable; default all).

    python bench/collaboration.py --part replication            # ~1-3 minutes on 2 cores
    python bench/collaboration.py --part replication --cases 12 --no-save

Parts (each writes its own JSON lines):

``replication`` — failures replayed at once on the other worker, neighbouring SUT configurations
and the same worker, and classified; planted defects of each class (see
``bench/collab_replication.py``). Figures: classification accuracy (target >= 90 %) and
executions spent per classification.

One JSON line per figure goes to stdout and is appended to bench/results/collaboration.jsonl.
Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collab_replication import part_replication
from vs_xdist import context, publish

RESULTS = Path(__file__).resolve().parent / "results" / "collaboration.jsonl"

PARTS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], list[str]]] = {"replication": part_replication}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Issue 20: a collaborating fleet, measured part by part.")
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="run only this part (repeatable)")
    parser.add_argument("--cases", type=int, default=8, help="replication: tests per planted class")
    parser.add_argument("--flaky-rate", type=float, default=0.4, help="replication: failure rate of the flaky tests")
    parser.add_argument("--seed", type=int, default=20261207, help="seed of the run and of the planted randomness")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one testfleet run may take")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)
    meta = context() | {"bench": "collaboration"}
    lines: list[str] = []
    for part in args.part or sorted(PARTS):
        print(f"== {part} ==")
        lines.extend(PARTS[part](args, meta))
    publish(lines, RESULTS, save=not args.no_save)
    return 0 if lines else 1


if __name__ == "__main__":
    sys.exit(main())
