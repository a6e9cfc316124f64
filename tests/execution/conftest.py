"""Helpers for the end-to-end tests: write a small pytest suite, run the real CLI on it.

Every run is a real ``python -m testfleet`` (or ``python -m pytest``) subprocess in the suite's
folder, bounded by ``TIMEOUT`` seconds (a hang guard, not a speed assertion), with results in a
real DuckDB file. Nothing here sleeps to wait for something: tests synchronise through files.

The functions are plain so that ``tests/cli`` and ``tests/test_third_party_parity.py`` can import
them (``from execution.conftest import ...``: pytest puts ``tests/`` on ``sys.path`` for the
``execution`` package in its default import mode).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from child_pytest import CHILD_PYTEST_ADDOPTS

from testfleet.model import Result, Run
from testfleet.store.db import Store

TIMEOUT = 300
"""Seconds any one subprocess may take before the test fails as a hang. Only a hang ever reaches
it: CI runs two test files at once on two cores (pytest-xdist), where a Ray run that takes 70 s
alone may take twice that, so the bound sits well above any run that is merely slow."""

_SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ [a-z ]+?(?:, )?)+|no tests ran) in [\d.]+s(?: \([\d:]+\))?\s*=*$")
_PART = re.compile(r"(\d+) ([a-z ]+)")
_WORD = {"errors": "error", "warning": "warnings"}


def make_suite(root: Path, files: dict[str, str], *, ini: str | None = "[pytest]\n") -> Path:
    """Write ``files`` (relative path -> source, dedented) under ``root``; return ``root``.

    A ``pytest.ini`` is added unless ``files`` has one (or ``ini`` is None), so that the suite is
    its own rootdir whatever lies above the temporary folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    if ini is not None and "pytest.ini" not in files:
        (root / "pytest.ini").write_text(ini)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child run: none of this session's pytest/xdist/testfleet variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "TESTFLEET_", "GITHUB_STEP_SUMMARY", "COV_CORE_"))}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1",
                # plugins no child suite uses, each a cost of every child's start (child_pytest.py)
                "PYTEST_ADDOPTS": CHILD_PYTEST_ADDOPTS})
    env.update(extra or {})
    return env


@dataclass
class Ran:
    """One finished CLI process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    store: Path | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def counts(self) -> dict[str, int]:
        return summary_counts(self.output)

    def run(self, ref: str = "last") -> Run:
        assert self.store is not None
        with Store.open(self.store, read_only=True) as store:
            return store.get_run(ref)

    def results(self, ref: str = "last", *, final_only: bool = False) -> list[Result]:
        assert self.store is not None
        with Store.open(self.store, read_only=True) as store:
            return store.results(store.get_run(ref).run_id, final_only=final_only)

    @property
    def log(self) -> str:
        """The whole command, exit code and output: the message of an assertion about the run."""
        return (f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout ---\n{self.stdout}"
                f"\n--- stderr ---\n{self.stderr}")


def run_cli(cwd: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None,
            store: Path | None = None, timeout: float = TIMEOUT) -> Ran:
    """``python -m testfleet ARGS`` in ``cwd``; ``store`` is only remembered for reading back."""
    argv = [sys.executable, "-m", "testfleet", *map(str, args)]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=clean_env(env), capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(argv)}` did not finish within {timeout}s (hang)\n"
                    f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr, store)


def run_testfleet(cwd: Path, *args: str | os.PathLike[str], store: Path | None = None,
                  workers: int | None = 2, env: dict[str, str] | None = None,
                  timeout: float = TIMEOUT) -> Ran:
    """``testfleet run --store STORE --workers N ARGS`` (pytest args go after ``--`` in ARGS)."""
    store = store or cwd / "s.duckdb"
    head: list[str | os.PathLike[str]] = ["run", "--store", store]
    if workers is not None:
        head += ["--workers", str(workers)]
    return run_cli(cwd, *head, *args, env=env, store=store, timeout=timeout)


def run_pytest(cwd: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None,
               timeout: float = TIMEOUT) -> Ran:
    """Plain ``python -m pytest -p no:cacheprovider ARGS`` in ``cwd``."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=clean_env(env), capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(argv)}` did not finish within {timeout}s\n{exc.stdout}")
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr)


def summary_counts(output: str) -> dict[str, int]:
    """pytest's (and testfleet's) last line, ``2 failed, 5 passed, 1 error in 0.3s``, as counts."""
    for line in reversed(output.splitlines()):
        match = _SUMMARY.match(line.strip())
        if match:
            counts: dict[str, int] = {}
            for number, word in _PART.findall(match.group("body")):
                word = _WORD.get(word.strip(), word.strip())
                counts[word] = counts.get(word, 0) + int(number)
            return counts
    raise AssertionError(f"no summary line in the output:\n{output}")


def outcome_counts(output: str) -> dict[str, int]:
    """The summary counts without the words that are not test outcomes (warnings)."""
    return {k: v for k, v in summary_counts(output).items() if k != "warnings"}


def by_nodeid(results: list[Result]) -> dict[str, list[Result]]:
    """Every attempt of every test, in attempt order."""
    out: dict[str, list[Result]] = {}
    for result in sorted(results, key=lambda r: (r.nodeid, r.attempt)):
        out.setdefault(result.nodeid, []).append(result)
    return out


def start_order(results: list[Result]) -> list[str]:
    """Node ids of the results in the order they started."""
    return [r.nodeid for r in sorted(results, key=lambda r: r.started_at)]


@pytest.fixture
def suite(tmp_path: Path):
    """``suite({"tests/test_a.py": "..."})`` writes a suite in a fresh folder and returns it."""

    def make(files: dict[str, str], **kwargs: object) -> Path:
        return make_suite(tmp_path / "suite", files, **kwargs)

    return make
