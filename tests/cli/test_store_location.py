"""Where the store is: every command finds the default store at the rootdir (the settings file's
folder, else pytest's configuration folder, else the current directory), a store's missing folder
is refused rather than created, and readers never create a store (spec check included), and
work on a read-only one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli

from testfleet.settings import DEFAULT_STORE, find_rootdir, load_settings

SUITE = {"tests/test_a.py": "def test_ok():\n    pass\n"}


@pytest.mark.slow
def test_readers_in_the_projects_folder_find_the_store_a_run_from_elsewhere_wrote(
        tmp_path: Path) -> None:
    project = make_suite(tmp_path / "repo" / "example", SUITE, ini=None)
    (project / "pyproject.toml").write_text("[tool.testfleet]\nworkers = 1\n")
    ran = run_cli(tmp_path / "repo", "run", "example")  # from the folder above, as the README does
    assert ran.returncode == 0, ran.log
    assert (project / DEFAULT_STORE).is_file() and not (tmp_path / "repo" / ".testfleet").exists()
    for cwd in (project, project / "tests"):
        listed = run_cli(cwd, "runs")
        assert listed.returncode == 0 and "1 passed" in listed.stdout, listed.log
        telemetry = run_cli(cwd, "telemetry", "last")
        assert telemetry.returncode == 0 and "no store here" not in telemetry.output, telemetry.log


def test_the_rootdir_is_the_settings_folder_else_pytests_config_folder_else_the_cwd(
        tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    assert find_rootdir(nested, None, tmp_path) == tmp_path  # nothing anywhere: the cwd
    (tmp_path / "a" / "tox.ini").write_text("[tox]\n")  # not pytest's: no [pytest] section
    assert find_rootdir(nested, None, tmp_path) == tmp_path
    (tmp_path / "a" / "tox.ini").write_text("[tox]\n[pytest]\naddopts = -q\n")
    assert find_rootdir(nested, None, tmp_path) == tmp_path / "a"
    (tmp_path / "a" / "b" / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    assert find_rootdir(nested, None, tmp_path) == tmp_path / "a" / "b"
    (nested / "pytest.ini").write_text("[pytest]\n")
    assert find_rootdir(nested, None, tmp_path) == nested
    settings_file = tmp_path / "a" / "testfleet.toml"
    settings_file.write_text("workers = 1\n")
    assert find_rootdir(nested, settings_file, tmp_path) == tmp_path / "a"
    settings, source = load_settings([], {}, cwd=nested)
    assert source == settings_file and settings.store == str(tmp_path / "a" / DEFAULT_STORE)
    flagged, _ = load_settings([], {"store": "mine.duckdb"}, cwd=nested)
    assert flagged.store == "mine.duckdb"  # a flag is relative to the current directory


def test_run_refuses_a_store_whose_folder_does_not_exist_and_creates_nothing(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    ran = run_cli(root, "run", "--store", tmp_path / "nowhere" / "x" / "s.duckdb")
    assert ran.returncode == 4 and "Traceback" not in ran.output, ran.log
    assert "the folder" in ran.stderr and "does not exist" in ran.stderr
    assert not (tmp_path / "nowhere").exists()
    saved = run_cli(root, "snapshot", "save", "pytest.ini", "--store",
                    tmp_path / "nowhere" / "s.duckdb")
    assert saved.returncode == 2 and "does not exist" in saved.stderr, saved.log
    assert not (tmp_path / "nowhere").exists()


def test_spec_check_on_a_missing_store_says_no_store_and_creates_none(tmp_path: Path) -> None:
    (tmp_path / "specs.yaml").write_text("specs:\n  - {id: a, then: passes}\n")
    ran = run_cli(tmp_path, "spec", "check", "specs.yaml", "--store", tmp_path / "missing.duckdb")
    assert ran.returncode == 2 and "no store here" in ran.stderr, ran.log
    assert not (tmp_path / "missing.duckdb").exists()


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a writable folder, the same folder mounted read-only): a bind mount (root only)."""
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True,
                           check=False)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)],
                                 capture_output=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot make a read-only mount: {remount.stderr.decode().strip()}")
        yield source, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.slow
def test_spec_check_runs_on_a_read_only_store_and_says_versions_were_not_recorded(
        read_only_copy: tuple[Path, Path]) -> None:
    source, view = read_only_copy
    make_suite(source, SUITE)
    assert run_cli(source, "run", "--workers", "1").returncode == 0
    (source / "specs.yaml").write_text("specs:\n  - {id: ok, then: passes}\n")
    ran = run_cli(view, "spec", "check", "specs.yaml")
    assert ran.returncode == 0, ran.log
    assert "1 holds" in ran.stdout or "holds" in ran.stdout, ran.log
    assert "read-only" in ran.stderr and "not recorded" in ran.stderr
    recorded = run_cli(source, "spec", "history", "ok")
    assert recorded.returncode == 2 and "no recorded versions" in recorded.stdout, recorded.log
