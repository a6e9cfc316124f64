"""Generators for the synthetic pytest suites the benchmarks run.

Each generator writes a self-contained suite (its own ``pytest.ini``, so the suite is its
own rootdir) into an empty directory and returns a :class:`Suite` describing what a
correct run must report. Everything is deterministic: the same arguments write the same
files byte for byte.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

#: environment variable naming the file that "heavy" tests append ``time.time()`` to
STAMPS_ENV = "TF_BENCH_STAMPS"

PYTEST_INI = """\
[pytest]
addopts = -p no:cacheprovider
"""


@dataclass
class Suite:
    name: str
    path: Path
    tests: int
    expected: dict[str, int]  # summary-line word -> count, e.g. {"passed": 3990, ...}
    meta: dict[str, object] = field(default_factory=dict)


def _start(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pytest.ini").write_text(PYTEST_INI)


def write_empty(path: Path, tests: int = 4000, files: int = 40, failing: int = 5, skipped: int = 5) -> Suite:
    """``tests`` empty tests over ``files`` modules; a few fail and a few are skipped.

    The failing and skipped tests are spread evenly over the modules so that no
    scheduler gets them all on one worker by accident.
    """
    _start(path)
    specials = failing + skipped
    kinds: list[str] = []  # fail, skip, fail, skip, ...
    for k in range(max(failing, skipped)):
        kinds += (["fail"] if k < failing else []) + (["skip"] if k < skipped else [])
    special_at = {int((k + 0.5) * tests / specials): kind for k, kind in enumerate(kinds)} if specials else {}
    bodies = {
        "pass": "def test_{n:05d}():\n    pass\n",
        "fail": "def test_{n:05d}():\n    assert 1 + 1 == 3, 'deliberate failure'\n",
        "skip": "@pytest.mark.skip(reason='deliberate skip')\ndef test_{n:05d}():\n    pass\n",
    }
    first = 0
    for f in range(files):
        count = tests // files + (1 if f < tests % files else 0)
        parts = ["import pytest\n"]
        parts += [bodies[special_at.get(n, "pass")].format(n=n) for n in range(first, first + count)]
        first += count
        (path / f"test_empty_{f:03d}.py").write_text("\n".join(parts))
    expected = {"passed": tests - specials, "failed": failing, "skipped": skipped}
    return Suite("empty", path, tests, {k: v for k, v in expected.items() if v})


def write_mixed(path: Path, tests: int = 2000, files: int = 20, seed: int = 20240601,
                low_ms: float = 1.0, high_ms: float = 50.0) -> Suite:
    """``tests`` tests that each sleep a duration drawn uniformly from [low_ms, high_ms]."""
    _start(path)
    rng = random.Random(seed)
    durations = [round(rng.uniform(low_ms, high_ms), 3) for _ in range(tests)]
    per_file = -(-tests // files)
    for f in range(files):
        chunk = range(f * per_file, min(tests, (f + 1) * per_file))
        lines = ["import time", ""]
        for n in chunk:
            lines += [f"def test_{n:05d}():", f"    time.sleep({durations[n] / 1000!r})", ""]
        (path / f"test_mixed_{f:03d}.py").write_text("\n".join(lines))
    total_s = sum(durations) / 1000
    return Suite("mixed", path, tests, {"passed": tests},
                 {"seed": seed, "durations_ms": durations, "sum_s": total_s,
                  "low_ms": low_ms, "high_ms": high_ms})


HEAVY_IMPORTS = [
    "import numpy",
    "import email.mime.multipart, email.policy",
    "import asyncio",
    "import decimal",
    "import xml.dom.minidom",
    "import sqlite3",
    "import http.client, urllib.request",
    "import json, csv, tarfile, zipfile",
    "import logging.handlers, concurrent.futures",
    "import statistics, fractions, unittest.mock",
]


def write_heavy(path: Path, modules: int = 10, tests: int = 200, work_iterations: int = 1_200_000) -> Suite:
    """``modules`` modules whose import is expensive, ``tests`` tests in all.

    At import each module pulls in heavy modules and runs a fixed amount of CPU work
    (``work_iterations`` steps of an integer recurrence, about 0.1 s on a current core).
    Each test appends ``time.time()`` to the file named by ``$TF_BENCH_STAMPS``.
    """
    _start(path)
    per_module = -(-tests // modules)
    header = textwrap.dedent(
        f"""\
        import os
        import time

        {{imports}}

        def _work(n):
            acc = {{salt}}
            for i in range(n):
                acc = (acc * 31 + i) % 1000003
            return acc

        IMPORT_WORK = _work({work_iterations})


        def _stamp():
            with open(os.environ["{STAMPS_ENV}"], "a") as fh:
                fh.write(f"{{{{time.time()!r}}}}\\n")

        """
    )
    n = 0
    for m in range(modules):
        lines = [header.format(imports="\n".join(HEAVY_IMPORTS), salt=m)]
        for _ in range(min(per_module, tests - n)):
            lines += [f"def test_{n:04d}():", "    _stamp()", "    assert IMPORT_WORK >= 0", ""]
            n += 1
        (path / f"test_heavy_{m:02d}.py").write_text("\n".join(lines))
    return Suite("heavy", path, tests, {"passed": tests},
                 {"modules": modules, "work_iterations": work_iterations})
