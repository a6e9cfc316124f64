"""Real suites written by others give the same outcomes under `testfleet run` as under pytest.

The test suites shipped inside installed packages (toolz, jsonschema, numpy) are copied to a
temporary folder, and sdists fetched from PyPI with ``pip download`` (more-itertools) are unpacked
there; each runs twice: plain ``python -m pytest`` and ``testfleet run --workers 2``. Fetched
sdists are kept in ``$TESTFLEET_SDIST_CACHE`` (default: a folder in the system's temporary
directory, outside the repository); without network to PyPI those tests are skipped.

What each suite exercises beyond plain tests:

* numpy's ``test_casting_unittests.py``: parameters that are members of an ``IntEnum`` defined
  in the test module (they once crashed the coordinator, which cannot import the module);
* more-itertools: ``unittest.TestCase`` classes with ``self.subTest`` (pytest counts "subtests
  passed" under ``-q``), and ``-ra`` listing the skip reasons in the short summary.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
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


SDIST_CACHE = Path(os.environ.get("TESTFLEET_SDIST_CACHE", Path(tempfile.gettempdir()) / "testfleet-parity-sdists"))


def fetch_sdist(name: str, version: str, destination: Path) -> Path:
    """``name==version``'s sdist from PyPI (``pip download``, cached), unpacked under
    ``destination``; returns the unpacked folder, which gets a ``pytest.ini`` if it has no
    pytest configuration, so that it is its own rootdir."""
    SDIST_CACHE.mkdir(parents=True, exist_ok=True)
    wanted = f"{name}-{version}.tar.gz".lower().replace("-", "_")  # pip names it either way
    found = [p for p in SDIST_CACHE.glob("*.tar.gz") if p.name.lower().replace("-", "_") == wanted]
    if not found:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "--dest", str(SDIST_CACHE), f"{name}=={version}"],
                              capture_output=True, text=True, timeout=600, check=False)
        found = [p for p in SDIST_CACHE.glob("*.tar.gz") if p.name.lower().replace("-", "_") == wanted]
        if proc.returncode != 0 or not found:
            pytest.skip(f"cannot fetch the {name} {version} sdist from PyPI: {proc.stderr.strip()[-300:]}")
    destination.mkdir(parents=True)
    with tarfile.open(found[0]) as archive:
        archive.extractall(destination, filter="data")
    [root] = [p for p in destination.iterdir() if p.is_dir()]
    if not any((root / f).exists() for f in ("pytest.ini", "tox.ini", "setup.cfg")):
        (root / "pytest.ini").write_text("[pytest]\n")
    return root


def short_summary(output: str) -> list[str]:
    """The lines of pytest's "short test summary info", sorted (workers finish in any order)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if "short test summary info" in line]
    if not starts:
        return []
    body = []
    for line in lines[starts[-1] + 1:]:
        if re.search(r"\d+ \w+.* in [\d.]+s", line):
            break
        body.append(line)
    return sorted(body)


def compare(root: Path, *pytest_args: str, summary: bool = False) -> None:
    plain = run_pytest(root, "-rfE", *pytest_args)
    fleet = run_testfleet(root, "--", "-rfE", *pytest_args)
    counts = outcome_counts(plain.output)
    assert sum(counts.values()) > 100, plain.log  # the suite really ran
    assert outcome_counts(fleet.output) == counts, fleet.log
    assert fleet.returncode == plain.returncode, fleet.log
    assert set(_FAILED.findall(fleet.stdout)) == set(_FAILED.findall(plain.stdout)), fleet.log
    if summary:  # every SKIPPED/XFAIL/XPASS/SUBFAILED line, word for word
        assert short_summary(fleet.stdout) == short_summary(plain.stdout), fleet.log
    assert {r.worker for r in fleet.results()} == {"gw0", "gw1"}


def test_toolz_suite_gives_the_same_outcomes(tmp_path: Path) -> None:
    compare(copy_package_tests("toolz", tmp_path / "toolz"))


def test_jsonschema_suite_gives_the_same_outcomes(tmp_path: Path) -> None:
    # test_jsonschema_test_suite.py needs a checkout of the JSON-Schema-Test-Suite, which the
    # package does not ship: leave that one module out, run the rest (~500 tests).
    root = copy_package_tests("jsonschema", tmp_path / "jsonschema")
    compare(root, "--ignore", "jsonschema_tests/test_jsonschema_test_suite.py")


def test_numpy_casting_suite_with_intenum_parameters_gives_the_same_outcomes(tmp_path: Path) -> None:
    # Its parameters include members of ``Casting(enum.IntEnum)``, defined in the test module.
    # The module is put in tests/ without __init__.py, so only the workers' pytest sessions can
    # import it, as in a project whose tests are not a package.
    spec = importlib.util.find_spec("numpy")
    if spec is None or spec.origin is None:
        pytest.skip("numpy is not installed")
    source = Path(spec.origin).parent / "_core" / "tests" / "test_casting_unittests.py"
    if not source.is_file():
        pytest.skip("numpy does not ship test_casting_unittests.py")
    root = tmp_path / "numpy"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(source, root / "tests" / source.name)
    compare(root, "-ra", summary=True)


@pytest.mark.parametrize("verbosity", [[], ["-q"]], ids=["default", "quiet"])
def test_more_itertools_sdist_with_unittest_subtests_gives_the_same_outcomes(tmp_path: Path,
                                                                             verbosity: list[str]) -> None:
    # unittest.TestCase classes throughout, ~2,300 ``self.subTest`` blocks (counted as
    # "subtests passed" under -q), and a skip that -ra lists
    root = fetch_sdist("more-itertools", "10.5.0", tmp_path / "sdist")
    compare(root, "-ra", *verbosity, "tests", summary=True)
    if verbosity:
        assert "subtests passed" in run_pytest(root, "-q", "tests").stdout.splitlines()[-1]
