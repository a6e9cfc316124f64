"""Real suites written by others give the same outcomes under `testfleet run` as under pytest.

The test suites shipped inside installed packages (toolz, jsonschema) are copied to a temporary
folder and run twice: plain ``python -m pytest`` and ``testfleet run --workers 2``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from execution.conftest import outcome_counts, run_pytest, run_testfleet

pytestmark = pytest.mark.slow

_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def copy_package_tests(package: str, destination: Path) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"{package} is not installed")
    source = Path(spec.origin).parent / "tests"
    if not source.is_dir():
        pytest.skip(f"{package} does not ship its tests")
    destination.mkdir(parents=True)
    (destination / "pytest.ini").write_text("[pytest]\n")
    shutil.copytree(source, destination / f"{package}_tests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def compare(root: Path, *pytest_args: str) -> None:
    plain = run_pytest(root, "-rfE", *pytest_args)
    fleet = run_testfleet(root, *(["--", *pytest_args] if pytest_args else []))
    counts = outcome_counts(plain.output)
    assert sum(counts.values()) > 100, plain.log  # the suite really ran
    assert outcome_counts(fleet.output) == counts, fleet.log
    assert fleet.returncode == plain.returncode, fleet.log
    assert set(_FAILED.findall(fleet.stdout)) == set(_FAILED.findall(plain.stdout)), fleet.log
    assert {r.worker for r in fleet.results()} == {"gw0", "gw1"}


def test_toolz_suite_gives_the_same_outcomes(tmp_path: Path) -> None:
    compare(copy_package_tests("toolz", tmp_path / "toolz"))


def test_jsonschema_suite_gives_the_same_outcomes(tmp_path: Path) -> None:
    # test_jsonschema_test_suite.py needs a checkout of the JSON-Schema-Test-Suite, which the
    # package does not ship: leave that one module out, run the rest (~500 tests).
    root = copy_package_tests("jsonschema", tmp_path / "jsonschema")
    compare(root, "--ignore", "jsonschema_tests/test_jsonschema_test_suite.py")
