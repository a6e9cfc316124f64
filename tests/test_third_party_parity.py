"""Real suites written by others give the same outcomes under `testfleet run` as under pytest.

The test suites shipped inside installed packages (toolz, jsonschema, numpy) are copied to a
temporary folder, and sdists fetched from PyPI with ``pip download`` (more-itertools, babel,
pint) are unpacked there; each runs twice: plain ``python -m pytest`` and
``testfleet run --workers 2``. Fetched sdists are kept in ``$TESTFLEET_SDIST_CACHE`` (default: a
folder in the system's temporary directory, outside the repository); without network to PyPI
those tests are skipped.

What each suite exercises beyond plain tests:

* numpy's ``test_casting_unittests.py``: parameters that are members of an ``IntEnum`` defined
  in the test module (they once crashed the coordinator, which cannot import the module);
* more-itertools: ``unittest.TestCase`` classes with ``self.subTest`` (pytest counts "subtests
  passed" under ``-q``), and ``-ra`` listing the skip reasons in the short summary;
* babel: a parametrized ``scope="package"`` fixture (pytest regroups the tests by its parameter),
  ``scope="module"`` fixtures and function-scoped ones;
* pint: unit registries in fixtures of session, module, class and function scope.

Dependencies of a fetched suite that the environment lacks are ``pip install --target``-ed into
the same cache and put on the runs' ``PYTHONPATH``, so that the environment is left as it is.
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
from execution.conftest import Ran, outcome_counts, run_pytest, run_testfleet

# under xdist this file shares a worker with the other heavy one (tests/conftest.py: HEAVY)
pytestmark = pytest.mark.slow

SUITE_TIMEOUT = 600
"""The hang guard of one run of a real suite (up to ~3,100 tests): on a loaded 2-core machine
babel's alone took over 120 s under plain pytest."""

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


def install_into_cache(*requirements: str) -> dict[str, str]:
    """``pip install --no-deps --target`` of pinned wheels into a cached folder; returns the
    environment that puts that folder on the child runs' ``PYTHONPATH``."""
    target = SDIST_CACHE / ("site-" + "-".join(sorted(requirements)).replace("==", "_"))
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                               *requirements], capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot install {' '.join(requirements)} from PyPI: {proc.stderr.strip()[-300:]}")
        (target / ".complete").touch()
    paths = [str(target), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def assert_defines_fixture(source: Path, scope: str, name: str) -> None:
    """The suite still has the fixture the test relies on: ``@pytest.fixture(...)`` right above
    ``def name(``, with ``scope=`` naming ``scope`` (none at all for ``function``)."""
    found = re.search(r"@pytest\.fixture(?:\((?P<args>[^)]*)\))?\s*\ndef " + re.escape(name) + r"\(",
                      source.read_text(encoding="utf-8"))
    assert found, f"{source} no longer defines the fixture {name}"
    declared = re.search(r"scope=['\"](\w+)['\"]", found.group("args") or "")
    assert (declared.group(1) if declared else "function") == scope, f"{source}: {found.group(0)}"


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


def compare(root: Path, *pytest_args: str, summary: bool = False, env: dict[str, str] | None = None,
            fleet_args: tuple[str, ...] = ()) -> Ran:
    """Runs the suite under plain pytest and under testfleet, asserts they agree; returns the
    plain run (so that a test can say more about it without running the suite again)."""
    plain = run_pytest(root, "-rfE", *pytest_args, env=env, timeout=SUITE_TIMEOUT)
    fleet = run_testfleet(root, *fleet_args, "--", "-rfE", *pytest_args, env=env, timeout=SUITE_TIMEOUT)
    counts = outcome_counts(plain.output)
    assert sum(counts.values()) > 100, plain.log  # the suite really ran
    assert outcome_counts(fleet.output) == counts, fleet.log
    assert fleet.returncode == plain.returncode, fleet.log
    assert set(_FAILED.findall(fleet.stdout)) == set(_FAILED.findall(plain.stdout)), fleet.log
    if summary:  # every SKIPPED/XFAIL/XPASS/SUBFAILED line, word for word
        assert short_summary(fleet.stdout) == short_summary(plain.stdout), fleet.log
    assert {r.worker for r in fleet.results()} == {"gw0", "gw1"}
    return plain


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


def test_more_itertools_sdist_with_unittest_subtests_gives_the_same_outcomes(tmp_path: Path) -> None:
    # unittest.TestCase classes throughout, ~2,300 ``self.subTest`` blocks (counted as
    # "subtests passed" under -q), and a skip that -ra lists. Under -q only: the other
    # verbosities' subtest counts and summaries are compared on a small suite
    # (reporting/test_pytest_parity_output.py), where a run costs a fiftieth of this one.
    root = fetch_sdist("more-itertools", "10.5.0", tmp_path / "sdist")
    plain = compare(root, "-ra", "-q", "tests", summary=True)
    assert "subtests passed" in plain.stdout.splitlines()[-1], plain.log


def test_babel_sdist_with_package_module_and_function_scoped_fixtures_gives_the_same_outcomes(
        tmp_path: Path) -> None:
    # tests/conftest.py's ``timezone_getter`` is package-scoped and parametrized (pytz, zoneinfo),
    # so pytest reorders the date tests to set it up once per parameter; test_support_translations
    # has module-scoped catalogs; ``frozen_time`` (freezegun) is function-scoped. No real suite
    # found on PyPI defines a fixture of all five scopes; babel's session-scoped fixture lives
    # in tests/benchmarks, which pytest does not collect, and it has no class-scoped one.
    root = fetch_sdist("babel", "2.19.0", tmp_path / "sdist")
    tests = root / "tests"
    assert_defines_fixture(tests / "conftest.py", "package", "timezone_getter")
    assert_defines_fixture(tests / "conftest.py", "function", "frozen_time")
    assert_defines_fixture(tests / "test_support_translations.py", "module", "empty_translations")
    for module, name in [("test_dates.py", "timezone_getter"),
                         ("messages/frontend/test_init.py", "frozen_time")]:
        text = (tests / module).read_text(encoding="utf-8")
        assert re.search(r"def test_\w+\([^)]*\b" + name + r"\b", text), f"{module} no longer uses {name}"
    env = install_into_cache("freezegun==1.5.5", "python-dateutil==2.9.0.post0", "six==1.17.0",
                             "pytz==2026.6")
    # ~3,100 tests. test_setuptools_frontend is left out: it fails in both runs (the sdist is not
    # installed, so setuptools does not know babel's commands), and its FAILED line differs: pytest
    # trims the message to the terminal's width, testfleet does not, and the message quotes
    # sys.executable, which is .../python under pytest but .../python3.11 in testfleet's workers.
    # --dist loadfile: the tests of messages/frontend/test_cli.py create and remove the same
    # locale folders in the sdist's data dir, so two of them at once on two workers race (as they
    # would under pytest-xdist's default --dist load); a file stays on one worker
    compare(root, "-ra", "tests/test_dates.py", "tests/test_date_intervals.py",
            "tests/test_support_format.py", "tests/test_support_translations.py", "tests/messages",
            "--deselect", "tests/messages/test_setuptools_frontend.py::test_setuptools_commands",
            summary=True, env=env, fleet_args=("--dist", "loadfile"))


def test_pint_sdist_with_session_module_class_and_function_scoped_fixtures_gives_the_same_outcomes(
        tmp_path: Path) -> None:
    # pint/testsuite/conftest.py builds a UnitRegistry per session, module, class and test
    # (sess_registry, module_registry, class_registry, func_registry); the three modules run here
    # use each of them (~160 tests, a few seconds: a registry costs ~0.1 s to build).
    root = fetch_sdist("pint", "0.25.3", tmp_path / "sdist")
    suite = root / "pint" / "testsuite"
    for scope, name in [("session", "sess_registry"), ("module", "module_registry"),
                        ("class", "class_registry"), ("function", "func_registry")]:
        assert_defines_fixture(suite / "conftest.py", scope, name)
    assert_defines_fixture(suite / "test_log_units.py", "module", "module_registry_auto_offset")
    uses = {"test_infer_base_unit.py": ["sess_registry"], "test_log_units.py": ["module_registry"],
            "test_contexts.py": ["class_registry", "func_registry"]}
    for module, fixtures in uses.items():
        text = (suite / module).read_text(encoding="utf-8")
        for name in fixtures:  # a test that takes the fixture as an argument
            assert re.search(r"def test_\w+\([^)]*\b" + name + r"\b", text), f"{module} no longer uses {name}"
    env = install_into_cache("flexcache==0.3", "flexparser==0.4", "platformdirs==4.14.9",
                             "typing_extensions==4.16.0")
    compare(root, "-ra", *(f"pint/testsuite/{module}" for module in uses), summary=True, env=env)
