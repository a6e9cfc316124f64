"""Bad input gets one clear message, pytest's usage exit code, and nothing half-written.

The CLI cases run the real ``testfleet`` process; the settings parser's property tests call
:func:`testfleet.settings.load_settings` in-process over generated ``[tool.testfleet]`` tables.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import duckdb
import pytest
from execution.conftest import make_suite, outcome_counts, run_cli, run_testfleet
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.settings import Settings, load_settings
from testfleet.store.db import Store

ONE_TEST = {"tests/test_one.py": "def test_one():\n    pass\n"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_suite(tmp_path / "project", ONE_TEST)


# -- the command line -------------------------------------------------------------------------

def test_unknown_flag_is_a_usage_error(project: Path) -> None:
    ran = run_cli(project, "run", "--no-such-flag")
    assert ran.returncode == 4, ran.log
    assert "No such option: --no-such-flag" in ran.output
    assert "Traceback" not in ran.output


def test_bad_workers_value_is_a_usage_error(project: Path) -> None:
    ran = run_cli(project, "run", "--workers", "lots")
    assert ran.returncode == 4, ran.log
    assert "--workers" in ran.output and "lots" in ran.output
    assert "Traceback" not in ran.output


def test_missing_path_is_a_usage_error(project: Path) -> None:
    ran = run_testfleet(project, "tests/no_such_dir")
    assert ran.returncode == 4, ran.log
    assert "file or directory not found: tests/no_such_dir" in ran.output
    assert not (project / "s.duckdb").exists()  # refused before the store was touched


@pytest.mark.parametrize(("table", "names"), [
    ("[tool.testfleet\nworkers = 2\n", ["not valid TOML", "line 1"]),
    ("[tool.testfleet]\nwrokers = 2\n", ["wrokers"]),
    ("[tool.testfleet]\nworkers = 0\n", ["workers"]),
    ("[tool.testfleet]\nworkers = \"many\"\n", ["workers"]),
    ("[tool.testfleet]\nreruns = -1\n", ["reruns"]),
    ("[tool.testfleet]\ndist = \"everywhere\"\n", ["dist"]),
], ids=["bad-toml", "unknown-key", "zero-workers", "workers-not-a-number", "negative-reruns", "bad-dist"])
def test_malformed_settings_name_the_file_and_the_key(project: Path, table: str, names: list[str]) -> None:
    (project / "pyproject.toml").write_text(table)
    ran = run_testfleet(project, workers=None)
    assert ran.returncode == 4, ran.log
    assert str(project / "pyproject.toml") in ran.stderr, ran.log
    for name in names:
        assert name in ran.stderr, ran.log
    assert "Traceback" not in ran.output
    assert not (project / "s.duckdb").exists()


def test_a_flag_with_an_invalid_value_names_the_flag(project: Path) -> None:
    ran = run_testfleet(project, "--reruns", "-2")
    assert ran.returncode == 4, ran.log
    assert "--reruns" in ran.stderr, ran.log
    assert "Traceback" not in ran.output


def test_a_garbage_store_is_refused_and_left_untouched(project: Path) -> None:
    store = project / "garbage.duckdb"
    content = b"this is not a DuckDB database\n" * 200
    store.write_bytes(content)
    ran = run_testfleet(project, store=store)
    assert ran.returncode == 4, ran.log
    assert "garbage.duckdb" in ran.stderr and "not a testfleet store" in ran.stderr, ran.log
    assert "Traceback" not in ran.output
    assert store.read_bytes() == content
    assert sorted(p.name for p in project.iterdir() if p.name.startswith("garbage")) == ["garbage.duckdb"]


def test_a_store_from_a_newer_testfleet_is_refused_and_left_untouched(project: Path) -> None:
    path = project / "newer.duckdb"
    Store.open(path).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        conn.execute("CHECKPOINT")
    before = path.read_bytes()
    ran = run_testfleet(project, store=path)
    assert ran.returncode == 4, ran.log
    assert "newer.duckdb" in ran.stderr and "999" in ran.stderr and "newer" in ran.stderr, ran.log
    assert path.read_bytes() == before
    assert not Path(f"{path}.wal").exists()
    # the read-only commands refuse it too (exit 2 for every command but run)
    for command in (["runs"], ["show", "last"]):
        shown = run_cli(project, *command, "--store", path)
        assert shown.returncode == 2, shown.log
        assert "999" in shown.stderr, shown.log
    assert path.read_bytes() == before


def test_show_an_unknown_run_exits_2(project: Path) -> None:
    store = project / "s.duckdb"
    assert run_testfleet(project, store=store).returncode == 0
    ran = run_cli(project, "show", "nosuchrun", "--store", store)
    assert ran.returncode == 2, ran.log
    assert "nosuchrun" in ran.stderr
    assert "Traceback" not in ran.output


def test_a_collection_error_exits_2_and_shows_the_error(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", {
        "tests/test_ok.py": "def test_ok():\n    pass\n",
        "tests/test_broken.py": "def test_broken(:\n    pass\n",
    })
    ran = run_testfleet(root)
    assert ran.returncode == 2, ran.log
    assert "ERROR collecting tests/test_broken.py" in ran.stdout, ran.log
    assert "SyntaxError" in ran.stdout, ran.log
    assert outcome_counts(ran.output) == {"error": 1}, ran.log
    assert ran.run().exit_code == 2


def test_no_tests_collected_exits_5(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", {"tests/test_nothing.py": "def helper():\n    pass\n"})
    ran = run_testfleet(root)
    assert ran.returncode == 5, ran.log
    assert "no tests ran" in ran.stdout, ran.log


# -- the settings parser, in-process ------------------------------------------------------------

PATHS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8).map(
    lambda s: f"out/{s}.dat")
VALID: dict[str, st.SearchStrategy[Any]] = {
    "workers": st.integers(1, 512) | st.just("auto"),
    "store": PATHS,
    "dist": st.sampled_from(["load", "loadscope", "loadfile"]),
    "timeout": st.floats(min_value=0.001, max_value=1e6) | st.integers(1, 10**6),
    "reruns": st.integers(0, 100),
    "max_worker_restarts": st.integers(0, 1000),
    "maxfail": st.integers(0, 1000),
    "junitxml": PATHS,
    "json": PATHS,
    "md": PATHS,
    "start_method": st.sampled_from(["auto", "fork", "spawn"]),
    "failed_first": st.booleans(),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "pytest_args": st.lists(st.text(string.ascii_letters + "-=:_ ", max_size=10), max_size=4),
}
FIELD = {"json": "json_report"}  # keys whose Settings field has another name
PATH_KEYS = {"store", "junitxml", "json", "md"}

ANY_SCALAR = (st.integers(-(2**63), 2**63 - 1) | st.floats(allow_infinity=False) | st.booleans()
              | st.text(string.printable.strip(), max_size=8))
ANY_VALUE = ANY_SCALAR | st.lists(ANY_SCALAR, max_size=3)


def _is_valid(key: str, value: Any) -> bool:
    """The oracle: does ``value`` have the right TOML type and range for ``key``?"""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if key == "workers":
        return value == "auto" or (is_int and value >= 1)
    if key in PATH_KEYS:
        return isinstance(value, str) and value != ""
    if key == "dist":
        return value in ("load", "loadscope", "loadfile")
    if key == "start_method":
        return value in ("auto", "fork", "spawn")
    if key == "timeout":
        return (is_int or isinstance(value, float)) and value > 0 and math.isfinite(value)
    if key in ("reruns", "max_worker_restarts", "maxfail"):
        return is_int and value >= 0
    if key == "failed_first":
        return isinstance(value, bool)
    if key == "seed":  # stored as BIGINT and given to numpy, which refuses a negative seed
        return is_int and 0 <= value <= 2**63 - 1
    if key == "pytest_args":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False  # an unknown key


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    """A [tool.testfleet] table: some keys with valid values, some with anything, some unknown."""
    table: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), unique=True, max_size=6)):
        table[key] = draw(VALID[key] | ANY_VALUE if draw(st.booleans()) else VALID[key])
    unknown = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(lambda k: k not in VALID)
    for key in draw(st.lists(unknown, unique=True, max_size=1 if draw(st.booleans()) else 0)):
        table[key] = draw(ANY_VALUE)
    return table


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # printable ASCII: JSON's escapes are TOML's
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def write_table(folder: Path, table: dict[str, Any]) -> Path:
    path = folder / "pyproject.toml"
    lines = ["[project]", 'name = "demo"', "", "[tool.testfleet]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_field(folder: Path, key: str, value: Any) -> Any:
    if key in PATH_KEYS:
        return str(folder / value)  # relative to the settings file's folder
    if key == "timeout":
        return float(value)
    return value


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type (so that True is not 1 and "3" is not 3)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("settings")


def _load(folder: Path, table: dict[str, Any]) -> tuple[Settings | None, SettingsError | None, Path]:
    path = write_table(folder, table)
    try:
        loaded, source = load_settings(paths=[], overrides={}, cwd=folder)
    except SettingsError as exc:
        return None, exc, path
    assert source == path
    return loaded, None, path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables())
@example(table={"workers": 0})
@example(table={"workers": "many"})
@example(table={"reruns": -1, "dist": "load"})
@example(table={"wrokers": 2})
@example(table={"timeout": float("nan")})
def test_settings_parser_returns_settings_or_a_settings_error_naming_file_and_key(
        settings_dir: Path, table: dict[str, Any]) -> None:
    """Whatever the table holds: Settings, or a SettingsError naming pyproject.toml and a bad key;
    never another exception. A table of valid values always loads, and loads as written."""
    loaded, error, path = _load(settings_dir, table)
    invalid = [key for key, value in table.items() if not _is_valid(key, value)]
    if error is not None:
        assert invalid, f"a valid table was refused: {table!r}: {error}"
        message = str(error)
        assert str(path) in message and "pyproject.toml" in message, message
        place = error.place or ""
        named = [k for k in invalid if place == f"tool.testfleet.{k}" or place.startswith(f"tool.testfleet.{k}.")]
        assert named and f"[{place}]" in message, (message, invalid)
        return
    assert loaded is not None
    for key, value in table.items():
        if _is_valid(key, value):
            assert same(getattr(loaded, FIELD.get(key, key)), expected_field(settings_dir, key, value)), key


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables())
@example(table={"workers": "3"})
@example(table={"failed_first": "yes"})
@example(table={"seed": True})
def test_settings_parser_never_reinterprets_a_value_of_the_wrong_type(
        settings_dir: Path, table: dict[str, Any]) -> None:
    """A table with a value of the wrong TOML type (``workers = "3"``, ``failed_first = "yes"``,
    ``seed = true``, ``reruns = 2.0``) is refused, not quietly converted: every loaded table's
    fields equal the table's values, type included."""
    loaded, _error, _ = _load(settings_dir, table)
    if loaded is None:
        return
    assert not [k for k, v in table.items() if not _is_valid(k, v)], (
        f"loaded a table with bad values: {table!r} -> "
        f"{ {k: getattr(loaded, FIELD.get(k, k), None) for k in table} !r}")
