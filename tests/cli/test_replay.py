"""``testfleet replay``: the configurations a variant's run used come back exactly, and the case
runs again with the run's seed."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from execution.conftest import make_suite, run_cli, run_testfleet

SUITE = {"tests/test_x.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert 0, 'boom'\n"}


def _variant_of(store: Path, nodeid: str) -> str:
    with duckdb.connect(str(store), read_only=True) as conn:
        return conn.execute("SELECT variant_id FROM results WHERE nodeid = $1 LIMIT 1",
                            [nodeid]).fetchone()[0]


def test_replay_restores_the_runs_settings_and_reruns_the_case(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", SUITE | {
        "pyproject.toml": "[tool.testfleet]\nworkers = 2\n# the original settings\n"})
    settings = project / "pyproject.toml"
    original = settings.read_bytes()
    ran = run_testfleet(project, "--seed", "1234")
    assert ran.returncode == 1, ran.log
    settings.write_text(settings.read_text() + "\n# edited after the run\n")
    variant = _variant_of(ran.store, "tests/test_x.py::test_bad")

    only = run_cli(project, "replay", variant[:8], "--no-run", "--configs", "restored",
                   "--store", ran.store)
    assert only.returncode == 0, only.log
    assert (project / "restored" / "settings" / "pyproject.toml").read_bytes() == original
    assert "seed 1234" in only.stdout

    again = run_cli(project, "replay", variant, "--configs", "again", "--store", ran.store)
    assert again.returncode == 1, again.log
    assert "1 failed in" in again.stdout and "passed" not in again.stdout.splitlines()[-2]
    with duckdb.connect(str(ran.store), read_only=True) as conn:
        runs = conn.execute("SELECT seed, argv FROM runs ORDER BY started_at").fetchall()
    assert [seed for seed, _ in runs] == [1234, 1234]
    assert json.loads(runs[-1][1])[0] == "replay"


def test_replay_of_an_unknown_variant_is_one_message(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", SUITE)
    ran = run_testfleet(project)
    missing = run_cli(project, "replay", "ffffffff", "--store", ran.store)
    assert missing.returncode == 2
    assert "no executed variant 'ffffffff'" in missing.stderr and "Traceback" not in missing.output
