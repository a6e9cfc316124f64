"""``testfleet run --resume RUN``: finish an interrupted run, into the same run.

A run whose coordinator was killed (``kill -9``, the OOM killer, a lost machine) or interrupted
(Ctrl-C, SIGTERM) is closed as ``interrupted`` at the next open of the store, with every result
its coordinator had received: those in DuckDB and those in its write-ahead journal
(``store/journal.py``). ``--resume`` runs that run again with the arguments it was started with
(its recorded ``argv``), its recorded settings and seed, and runs only the tests that have no
final result in it. The new results are appended to the SAME run id, so the store, ``testfleet
show``, the JUnit/JSON/Markdown reports and the summary see one run with every test once, as an
uninterrupted run would have been.

* ``RUN`` is a run id, a unique prefix of one, or ``last``.
* A run that finished (or stopped on an error) has nothing to resume; an unknown run, or one
  whose coordinator still runs, neither: each is a usage error (exit 4) with a message.
* What a test already had is kept as it was: its final result, and an earlier non-final attempt
  (a rerun in progress) counts towards its attempts and towards flakiness, as it would have.
* Exploration (``--explore``) is not resumed: the resumed run finishes the baseline tests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.errors import UsageError
from testfleet.model import Result, Run, RunStatus
from testfleet.settings import Settings

PLACE = "--resume"

# options of `testfleet run` that belong to one invocation, not to the run: dropped on resume
# (the store is where --resume found the run)
_INVOCATION_ONLY = {"--store": 1, "--run-id": 1, "--events-fd": 1, "--submitted": 1, "--dashboard": 0,
                    "--resume": 1, "--resume-into": 1}


@dataclass
class Resumed:
    """An interrupted run to finish: its record and every result it stored."""

    run: Run
    results: list[Result]


def check_resumable(run: Run) -> None:
    """A usage error unless ``run`` was interrupted (only such a run has something to resume)."""
    if run.status == RunStatus.interrupted:
        return
    if run.status == RunStatus.running:
        raise UsageError(f"run {run.run_id} is still running (its coordinator is alive): "
                         "nothing to resume", place=PLACE)
    raise UsageError(f"run {run.run_id} {run.status.value} (exit code {run.exit_code}): nothing "
                     "to resume; only an interrupted run can be resumed", place=PLACE)


def load_resumed(store_path: str | Path, ref: str) -> Resumed:
    """Open the store (for writing: a dead coordinator's journal is replayed and its run closed
    as interrupted), find ``ref`` and check it can be resumed."""
    from testfleet.errors import StoreError
    from testfleet.store.db import Store

    path = Path(store_path)
    if not path.exists():
        raise UsageError(f"no store at {path}: no run to resume", place=PLACE)
    with Store.open(path) as store:
        try:
            run = store.get_run(ref)
        except StoreError as exc:
            raise UsageError(str(exc), place=PLACE) from None
        check_resumable(run)
        return Resumed(run, store.results(run.run_id))


def recorded_arguments(argv: list[str]) -> list[str]:
    """The arguments after ``run`` in a run's recorded ``argv`` (``[program, 'run', ...]``), less
    the options that belonged to that one invocation."""
    args = list(argv[1:])
    if "run" in args:
        args = args[args.index("run") + 1:]
    out: list[str] = []
    skip = 0
    for position, arg in enumerate(args):
        if skip:
            skip -= 1
            continue
        if arg == "--":
            out += args[position:]
            break
        name = arg.split("=", 1)[0]
        if name in _INVOCATION_ONLY:
            skip = 0 if "=" in arg else _INVOCATION_ONLY[name]
            continue
        out.append(arg)
    return out


def resume_arguments(ref: str, store: str | None) -> tuple[str, list[str]]:
    """For ``testfleet run --resume REF``: the run's id and the ``run`` arguments that rerun it."""
    from testfleet.settings import load_settings

    settings, _ = load_settings([], {"store": store})
    resumed = load_resumed(settings.store, ref)
    return resumed.run.run_id, recorded_arguments(resumed.run.argv)


def recorded_settings(run: Run, current: Settings) -> Settings:
    """The settings the run recorded (keys this testfleet does not know are left out; a setting
    recorded by an older one keeps its default). The store and the report paths are those of
    ``current``: the run's own arguments with the report flags given to ``--resume`` on top."""
    names = {field.alias or name for name, field in Settings.model_fields.items()} | set(Settings.model_fields)
    values: dict[str, Any] = {k: v for k, v in run.settings.items() if k in names}
    try:
        settings = Settings.model_validate(values)
    except ValueError as exc:
        raise UsageError(f"run {run.run_id}'s recorded settings are not usable here: {exc}", place=PLACE) from None
    for key in ("store", "junitxml", "json_report", "md"):  # where things go: as asked now
        setattr(settings, key, getattr(current, key))
    return settings


__all__ = ["Resumed", "check_resumable", "load_resumed", "recorded_arguments", "recorded_settings",
           "resume_arguments"]
