"""Every command that writes a file refuses a path it cannot write with one clear message and its
usage exit code (4 for `testfleet run`, before any test runs; 2 for the others), never a
traceback, and a full disk leaves nothing half-written."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli, run_testfleet

from testfleet.atomic import atomic_directory, atomic_write_text, check_output
from testfleet.errors import OutputError

REPO = Path(__file__).resolve().parents[2]
TRAFFIC = REPO / "examples" / "inventory" / "traffic" / "requests.jsonl"
SUITE = {"tests/test_a.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert False\n"}


def _one_clear_error(ran, code: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert ran.returncode == code, ran.log
    assert "Traceback" not in ran.output, ran.log
    errors = [line for line in ran.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, ran.log
    for word in words:
        assert word in errors[0], ran.log


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite with one stored run (one passed, one failed) and a spec file."""
    root = make_suite(tmp_path_factory.mktemp("outputs") / "p", SUITE)
    ran = run_testfleet(root, workers=1)
    assert ran.returncode == 1, ran.log
    (root / "specs.yaml").write_text("specs:\n  - {id: ok-passes, when: 'tests/test_a.py::test_ok', "
                                     "then: passes}\n")
    (root / "space.yaml").write_text("dimensions:\n  threads: {type: int, min: 1, max: 8}\n")
    (root / "a_dir").mkdir()
    return root


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--junitxml", "--json", "--md"])
def test_run_refuses_a_directory_as_a_report_before_any_test_runs(tmp_path: Path, flag: str) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    (root / "reports").mkdir()
    ran = run_testfleet(root, flag, "reports", workers=1)
    _one_clear_error(ran, 4, "reports", flag, "is a directory")
    assert not (root / "s.duckdb").exists()  # refused before the store opened, no test ran


@pytest.mark.slow
def test_run_refuses_a_report_in_a_folder_that_takes_no_file(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    (root / "plain-file").write_text("x")
    ran = run_testfleet(root, "--junitxml", "plain-file/junit.xml", workers=1)
    _one_clear_error(ran, 4, "--junitxml", "is a file, not a folder")
    ran = run_testfleet(root, "--json", "/proc/testfleet/r.json", workers=1)
    _one_clear_error(ran, 4, "--json", "cannot create a file in /proc")


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["analyze", "--json", "a_dir"], ["analyze", "--md", "a_dir"], ["analyze", "--html", "a_dir"],
    ["flaky", "--json", "a_dir"],
    ["telemetry", "--html", "a_dir"], ["telemetry", "--png", "a_dir"],
    ["spec", "check", "specs.yaml", "--json", "a_dir"],
    ["spec", "check", "specs.yaml", "--junitxml", "a_dir"],
    ["space", "coverage", "space.yaml", "--run", "last", "--json", "a_dir"],
    ["space", "coverage", "space.yaml", "--run", "last", "--png", "a_dir"],
    ["space", "fuzz", "space.yaml", "-s", "edge", "-o", "specs.yaml"],
    ["space", "fuzz", "space.yaml", "-s", "edge", "-o", "/proc/x"],
    ["snapshot", "export", "whatever", "-o", "a_dir"],
    ["snapshot", "restore", "whatever", "specs.yaml/x"],
    ["replay", "whatever", "--configs", "specs.yaml"],
    ["scenarios", "from-openapi", str(REPO / "examples" / "inventory" / "openapi.yaml"), "-o",
     "specs.yaml"],
    ["generate", "learn", str(TRAFFIC), "-o", "a_dir"],
    ["generate", "drift", "model.json", "--against", str(TRAFFIC), "--json", "a_dir"],
], ids=lambda a: " ".join(a[:2] + a[-2:-1]))
def test_every_command_refuses_an_output_it_cannot_write_with_one_message(
        project: Path, args: list[str]) -> None:
    needs_store = args[0] in ("analyze", "flaky", "telemetry", "spec", "space", "snapshot", "replay")
    extra = ["--store", str(project / "s.duckdb")] if needs_store and args[1] != "fuzz" else []
    ran = run_cli(project, *args, *extra)
    _one_clear_error(ran, 2, args[-1])
    assert list((project / "a_dir").iterdir()) == []


# -- a full disk ---------------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 512 KiB tmpfs (root only), nearly filled: writes into it meet ENOSPC."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".tmp" in p.name or p.name.startswith(".") and p.is_dir())


def test_a_full_disk_leaves_no_half_written_file_and_says_so(full_disk: Path) -> None:
    with pytest.raises(OutputError, match="the disk is full") as info:
        atomic_write_text(full_disk / "report.json", "x" * 2_000_000)
    assert info.value.source == str(full_disk / "report.json")
    assert list(full_disk.iterdir()) == []
    with pytest.raises(OutputError, match="the disk is full"), \
            atomic_directory(full_disk / "variants") as staging:
        (staging / "a.json").write_text("x" * 2_000_000)
    assert list(full_disk.iterdir()) == []


def test_snapshot_save_on_a_full_disk_is_one_message_and_no_pack_is_left(
        tmp_path: Path, full_disk: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096 + __import__("os").urandom(1_000_000))
    store = full_disk / "s.duckdb"
    ran = run_cli(tmp_path, "snapshot", "save", big, "--store", store)
    _one_clear_error(ran, 2, "the disk is full")
    assert _leftovers(full_disk) == []


def test_space_fuzz_on_a_full_disk_is_one_message_and_no_staging_is_left(
        tmp_path: Path, full_disk: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("dimensions:\n" + "".join(
        f"  name{i}: [{'x' * 200}, {'y' * 200}]\n" for i in range(40)))
    ran = run_cli(tmp_path, "space", "fuzz", space, "-s", "random", "-n", "2000", "-o",
                  full_disk / "out")
    _one_clear_error(ran, 2, "the disk is full", str(full_disk / "out"))
    assert list(full_disk.iterdir()) == []


def test_check_output_accepts_a_new_file_in_a_new_folder_and_refuses_a_directory(
        tmp_path: Path) -> None:
    assert check_output(tmp_path / "new" / "deeper" / "r.xml") == tmp_path / "new" / "deeper" / "r.xml"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_output(tmp_path / "f", folder=True)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "f"]  # the probe file is gone


@pytest.mark.slow
def test_a_run_whose_store_fills_the_disk_stops_with_exit_3_and_reads_as_interrupted(
        tmp_path: Path, full_disk: Path) -> None:
    root = make_suite(tmp_path / "p", {"tests/test_loud.py": """
        import pytest

        @pytest.mark.parametrize("i", range(60))
        def test_loud(i):
            print("x" * 100_000)  # kept in the store: 6 MB into a 512 KiB disk
            assert False
        """})
    ran = run_testfleet(root, "-q", store=full_disk / "s.duckdb", workers=1)
    _one_clear_error(ran, 3, "No space left on device")
    shown = run_cli(root, "show", "last", "--store", full_disk / "s.duckdb")
    assert shown.returncode == 0 and "interrupted" in shown.stdout, shown.log
    assert "running" not in shown.stdout
