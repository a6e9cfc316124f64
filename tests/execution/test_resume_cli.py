"""``testfleet run --resume``: which runs it takes, and how it rebuilds the run's invocation.

In-process and without workers: a run that cannot be resumed is refused before anything starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from testfleet.cli.app import main
from testfleet.cli.resume import recorded_arguments, recorded_settings
from testfleet.model import Run, RunStatus
from testfleet.settings import Settings
from testfleet.store.db import Store

T0 = datetime(2026, 1, 2, tzinfo=UTC)


def _store(tmp_path: Path, *runs: tuple[str, RunStatus]) -> Path:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        for run_id, status in runs:
            store.begin_run(Run(run_id=run_id, started_at=T0, workers=2))  # by this (living) process
            if status != RunStatus.running:
                store.finish_run(Run(run_id=run_id, started_at=T0, status=status, finished_at=T0,
                                     exit_code=0 if status == RunStatus.finished else 3))
    return path


@pytest.mark.parametrize(("runs", "ref", "message"), [
    ([], "last", "no runs recorded yet"),
    ([("20260102-000000-aaaa", RunStatus.finished)], "nope", "no run 'nope'"),
    ([("20260102-000000-aaaa", RunStatus.finished)], "last",
     "run 20260102-000000-aaaa finished (exit code 0): nothing to resume; only an interrupted run can be resumed"),
    ([("20260102-000000-aaaa", RunStatus.error)], "20260102", "run 20260102-000000-aaaa error (exit code 3)"),
    ([("20260102-000000-aaaa", RunStatus.running)], "last",
     "run 20260102-000000-aaaa is still running (its coordinator is alive): nothing to resume"),
])
def test_a_run_that_cannot_be_resumed_is_a_usage_error_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], runs: list[tuple[str, RunStatus]], ref: str,
        message: str) -> None:
    path = _store(tmp_path, *runs)
    assert main(["run", "--resume", ref, "--store", str(path)]) == 4
    err = capsys.readouterr().err
    assert "--resume" in err and message in err, err


def test_resume_without_a_store_or_with_paths_is_a_usage_error(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", "last", "--store", str(tmp_path / "none.duckdb")]) == 4
    assert "no store at" in capsys.readouterr().err
    path = _store(tmp_path, ("r", RunStatus.interrupted))
    assert main(["run", "tests", "--resume", "last", "--store", str(path)]) == 4
    assert "give no paths" in capsys.readouterr().err


def test_the_recorded_invocation_is_rerun_without_what_belonged_to_that_invocation() -> None:
    argv = ["/usr/bin/testfleet", "run", "tests", "-n", "2", "--store", "s.duckdb", "--run-id", "x", "-k", "run",
            "--events-fd=5", "--submitted", "{}", "--seed", "7", "--", "-p", "no:cacheprovider", "--store", "y"]
    assert recorded_arguments(argv) == ["tests", "-n", "2", "-k", "run", "--seed", "7",
                                        "--", "-p", "no:cacheprovider", "--store", "y"]


def test_the_recorded_settings_are_used_but_the_store_and_reports_are_todays() -> None:
    recorded = Settings(workers=3, reruns=2, timeout=9.0, junitxml="old.xml").model_dump(mode="json", by_alias=True)
    run = Run(run_id="r", started_at=T0, settings=recorded | {"settings_file": None, "environment": {},
                                                              "a_setting_from_a_newer_testfleet": 1})
    now = Settings(workers=1, store="here.duckdb", junitxml="new.xml")
    settings = recorded_settings(run, now)
    assert (settings.workers, settings.reruns, settings.timeout) == (3, 2, 9.0)
    assert (settings.store, settings.junitxml) == ("here.duckdb", "new.xml")
