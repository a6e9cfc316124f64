"""Is a run's coordinator still alive? Runs whose coordinator died are closed as ``interrupted``.

A run is recorded ``running`` when it begins and closed when it ends. A coordinator killed by
``kill -9``, the OOM killer or a full disk never closes it. So the run row records who began it:
the coordinator's pid, host and process start time (``coordinator_*`` columns, schema v4). A
run is *orphaned* when it is still ``running``, was begun on this host, and no process with that
pid and start time exists any more (a reused pid has another start time). A run begun on another
host is left alone: whether its coordinator lives cannot be decided here. Rows written before
schema v4 carry no coordinator; they are orphaned too, since a coordinator holds the store for
writing for its whole run and an older testfleet is no longer running against this file.

Opening the store for writing closes orphans for good (status ``interrupted``, exit code 2,
counts from the results that were stored, end time from the last of them). A read-only store
shows them the same way without writing (:func:`settle`).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC
from typing import TYPE_CHECKING

import psutil

from testfleet.model import Run, RunStatus

if TYPE_CHECKING:
    from testfleet.store.db import Store

INTERRUPTED_EXIT = 2
"""pytest's exit code for an interrupted session."""

_START_SLACK = 1.0
"""Seconds two readings of one process's start time may differ by (clock-tick rounding)."""


def this_coordinator() -> tuple[int, str, float]:
    """(pid, host, process start time as epoch seconds) of the calling process."""
    pid = os.getpid()
    return pid, socket.gethostname(), psutil.Process(pid).create_time()


def is_gone(pid: int | None, host: str | None, started: float | None) -> bool:
    """Whether the coordinator (pid, host, start time) no longer runs; False when undecidable
    (another host)."""
    if pid is None:
        return True  # a row from before the coordinator was recorded (see the module doc)
    if host != socket.gethostname():
        return False
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:
        return False  # it exists but cannot be looked at: not provably gone
    return started is not None and abs(created - started) > _START_SLACK


def orphaned(store: Store) -> list[str]:
    """Ids of the store's ``running`` runs whose coordinator is gone."""
    rows = store.query("SELECT run_id, coordinator_pid, coordinator_host, coordinator_started "
                       "FROM runs WHERE status = 'running'")
    return [run_id for run_id, pid, host, started in rows if is_gone(pid, host, started)]


def as_interrupted(store: Store, run: Run) -> Run:
    """``run`` closed as interrupted: counts from its stored final results, its end the last of
    them (or its start when none was stored)."""
    from testfleet.reporting.summary import count_outcomes

    results = store.results(run.run_id, final_only=True)
    ends = [r.finished_at for r in results if r.finished_at is not None]
    finished = max(ends) if ends else run.started_at
    started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    return run.model_copy(update={
        "status": RunStatus.interrupted, "exit_code": INTERRUPTED_EXIT,
        "counts": count_outcomes(results, deselected=run.deselected),
        "flaky": sum(1 for r in results if r.flaky),
        "finished_at": finished,
        "duration": max(0.0, (finished - started).total_seconds())})


def settle(store: Store, runs: list[Run], gone: set[str] | None = None) -> list[Run]:
    """``runs`` with each orphan shown as interrupted (nothing is written)."""
    if not any(run.status == RunStatus.running for run in runs):
        return runs
    gone = set(orphaned(store)) if gone is None else gone
    return [as_interrupted(store, run) if run.run_id in gone else run for run in runs]


def close_orphans(store: Store) -> list[str]:
    """Record every orphaned run as interrupted (a store open for writing); their ids."""
    closed = []
    for run_id in orphaned(store):
        store.finish_run(as_interrupted(store, store.get_run(run_id, settle=False)))
        closed.append(run_id)
    return closed


__all__ = ["as_interrupted", "close_orphans", "is_gone", "orphaned", "settle",
                      "this_coordinator"]
