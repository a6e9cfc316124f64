"""``testfleet run``: settings -> workers -> orchestrator -> store -> reports -> exit code.

The collector process is started before anything slow (opening the store, reading history) so
that collection overlaps the coordinator's own start-up. Bad input is refused before the store
is touched: a missing path, a bad setting or an unusable store exits 4 with one message.
"""

from __future__ import annotations

import importlib.util
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testfleet.errors import OutputError, StoreError, TestfleetError, UsageError
from testfleet.execution.probes.settings import helper_plan
from testfleet.execution.worker_config import worker_config
from testfleet.settings import Settings, check_store_folder, load_settings

USAGE = 4
INTERRUPTED = 2
INTERNAL = 3


@dataclass
class RunRequest:
    paths: list[str]
    pytest_extra: list[str] = field(default_factory=list)
    keyword: str | None = None
    markexpr: str | None = None
    last_failed: bool = False
    verbosity: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    run_id: str | None = None  # given by `testfleet serve`, which must know it before the run starts
    events_fd: int | None = None  # a pipe to `testfleet serve`: the run's events as JSON lines
    store_label: str | None = None  # the store a user knows this run by (a server's: not the private copy)
    resume_of: str | None = None  # --resume: the interrupted run this invocation finishes (cli/resume.py)


def _error(message: str) -> int:
    sys.stderr.write(f"ERROR: {message}\n")
    return USAGE


def missing_paths(paths: list[str], cwd: Path) -> list[str]:
    """The given paths (or node ids) whose file part does not exist, as pytest would refuse them."""
    return [p for p in paths if not p.startswith("-") and not (cwd / p.split("::", 1)[0]).exists()]


def pytest_arguments(request: RunRequest, settings: Settings) -> list[str]:
    args = list(request.paths)
    if request.keyword:
        args += ["-k", request.keyword]
    if request.markexpr:
        args += ["-m", request.markexpr]
    if request.verbosity > 0:
        args.append("-" + "v" * request.verbosity)
    elif request.verbosity < 0:
        args.append("-" + "q" * -request.verbosity)
    args += settings.pytest_args + request.pytest_extra
    # A suite whose addopts ask pytest-xdist for workers must not start a fleet inside each worker.
    # Only decidable where the workers share this environment (not on a Ray cluster's nodes).
    if settings.backend == "local" and importlib.util.find_spec("xdist") is not None \
            and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args.append("-n0")
    return args


def make_backend(settings: Settings, pytest_args: list[str], workers: int, cwd: Path,
                 env: dict[str, str] | None = None) -> Any:
    """The backend the settings ask for: local, ray or a plugin's (the registry's factories);
    ``env``: added to the workers' environment (--chaos)."""
    from testfleet.plugins import registry

    return registry().backends()[settings.backend](settings, pytest_args, workers, cwd, env)


def git_sha(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict[str, str]:
    """Where the coordinator ran: failure analysis treats these as parameters across runs."""
    import platform

    return {"host": platform.node(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}"}


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM stops a run the way Ctrl-C does: workers stopped, the run closed as interrupted,
    reports written, exit 2."""
    raise KeyboardInterrupt


def execute(request: RunRequest) -> int:
    """Run the request; SIGTERM is handled as an interrupt while it runs."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _execute(request)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _execute(request: RunRequest) -> int:
    cwd = Path.cwd()
    started_wall = time.monotonic()
    try:
        settings, source = load_settings(request.paths, request.overrides, cwd=cwd)
        # Report paths are checked before any test runs: a directory or an unwritable folder
        # is a usage error (4), never "tests failed" after the whole run.
        from testfleet.plugins.reports import check_reports

        check_reports(settings)  # every reporter's path: junit, json, md and the plugins'
        check_store_folder(settings.store)
        for ruleset in (settings.ruleset, settings.ruleset_b):
            if ruleset:
                from testfleet.mutation.rules import load_ruleset

                load_ruleset(ruleset)  # a bad ruleset too
        if settings.ruleset_b and not settings.explore:
            raise UsageError("--ruleset-b compares two rulesets during exploration: it needs "
                             "--explore", place="--ruleset-b")
    except TestfleetError as exc:
        return _error(str(exc))
    resumed = None
    if request.resume_of:  # the run's recorded settings and seed, its earlier attempts' time
        from testfleet.cli.resume import load_resumed, recorded_settings

        try:
            resumed = load_resumed(settings.store, request.resume_of)
            settings = recorded_settings(resumed.run, settings)
        except TestfleetError as exc:
            return _error(str(exc))
        settings.seed, started_wall = resumed.run.seed, started_wall - resumed.run.duration
    missing = missing_paths(request.paths, cwd)
    if missing:
        return _error(f"file or directory not found: {missing[0]}")
    workers = settings.worker_count()
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**32)
    chaos = None
    try:
        if settings.chaos:  # a bad schedule is refused before any worker starts
            from testfleet.execution.chaos import plan_chaos

            chaos = plan_chaos(settings.chaos, seed, has_sut=settings.sut is not None, cwd=cwd)
        backend = make_backend(settings, pytest_arguments(request, settings), workers, cwd,
                               env=chaos.env() if chaos is not None else None)
        backend.start()  # collection runs while the store opens
    except TestfleetError as exc:
        return _error(str(exc))

    from testfleet.execution.orchestrator import Orchestrator, RunPlan
    from testfleet.model import Run, RunStatus
    from testfleet.reporting.console import ConsoleReporter
    from testfleet.store.db import Store
    from testfleet.store.recorder import StoreRecorder

    try:
        store = Store.open(settings.store)
    except StoreError as exc:
        backend.close()
        return _error(str(exc))
    run = None
    try:
        run_id = request.run_id or f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        run = resumed.run.model_copy(update={"status": RunStatus.running, "finished_at": None, "exit_code": None}) \
            if resumed else Run(run_id=run_id, started_at=datetime.now(UTC),
                  argv=request.argv, paths=request.paths, settings=settings.model_dump(mode="json", by_alias=True)
                  | {"settings_file": str(source) if source else None, "environment": environment()},
                  seed=seed, git_sha=git_sha(cwd),
                  backend=backend.name, workers=workers)
        plan = RunPlan(workers=workers, dist=settings.dist, timeout=settings.timeout, reruns=settings.reruns,
                       maxfail=settings.maxfail, restart_budget=settings.restart_budget(),
                       breakers=settings.breakers, handoff=settings.handoff,
                       history=store.duration_history(), last_failed=store.last_failed(),
                       failed_first=settings.failed_first, only_last_failed=request.last_failed,
                       continue_on_collection_errors="--continue-on-collection-errors" in request.pytest_extra,
                       requirement_rules=settings.requirement_rules(),
                       strict_requirements=settings.strict_requirements,
                       monitor=_monitor(store, settings),
                       explorer=None if resumed else _explorer(store, settings, seed),
                       resume=resumed.results if resumed else None,
                       replicate=_replicate(settings),
                       helpers=helper_plan(settings.helpers, settings.sut is not None, settings.store, run.run_id),
                       specialise=settings.specialise if settings.specialise.active(settings.explore) else None,
                       worker=worker_config(settings, source, seed=seed, cwd=cwd))
        console = ConsoleReporter(verbosity=request.verbosity)
        configs = {"settings": [source]} if source else {}
        if settings.ruleset:  # the rulesets' versions at the start, kept with the run
            configs["ruleset"] = [Path(settings.ruleset)]
        if settings.ruleset_b:
            configs["ruleset_b"] = [Path(settings.ruleset_b)]
        writer = None
        if request.events_fd is not None:
            from testfleet.service.events import EventWriter

            writer = EventWriter(request.events_fd, run.run_id)
        from testfleet.plugins.listeners import run_listener

        # the console, the service's event writer and the plugins' listeners, through one hook
        listener = run_listener(run, settings, {"console": console, "events": writer})
        recorder = StoreRecorder(store, {} if resumed else configs, resuming=resumed is not None)
        orchestrator = Orchestrator(backend, plan, run, recorder, listener,
                                    crash_text=getattr(backend, "crash_text", None), chaos=chaos)
        outcome = orchestrator.execute()
        recorder.close()
        if chaos is not None:
            chaos.cleanup()
        if resumed:  # flaky counts the earlier attempts' finals too
            run.flaky = sum(1 for r in outcome.results if r.final and r.flaky)
        console.stop()
        if outcome.collector_exit is not None:
            # pytest ended before collecting (a usage error, --collect-only, ...): show what it said.
            sys.stdout.write(outcome.collector_output)
            return outcome.collector_exit
        if outcome.fatal is not None:
            return _fatal(store, run, outcome, console, time.monotonic() - started_wall)
        return _finish(store, settings, run, outcome, console, time.monotonic() - started_wall,
                       store_label=request.store_label, on_report=writer.report if writer else None)
    except (StoreError, OutputError) as exc:  # a full disk, a store that went away: abort
        sys.stderr.write(f"ERROR: {exc}\n")
        _close_aborted(store, run, INTERNAL)
        return INTERNAL
    except BaseException:
        _close_aborted(store, run, INTERRUPTED)
        raise
    finally:
        store.close()


def _close_aborted(store: Any, run: Any, code: int) -> None:
    """Close a run that ends outside the orchestrator's own path as interrupted, counted from
    the results stored so far; when even that cannot be written (the disk is full) the next
    open of the store does it (store/liveness.py)."""
    if run is None:
        return
    from testfleet.model import RunStatus
    from testfleet.store.liveness import as_interrupted

    try:
        recorded = store.get_run(run.run_id, settle=False)
        if recorded.status == RunStatus.running:  # not one already finished (a report failed)
            store.finish_run(as_interrupted(store, recorded).model_copy(update={"exit_code": code}))
    except TestfleetError:
        pass


def _monitor(store: Any, settings: Settings) -> Any:
    """The anomaly watch, its baselines primed with earlier runs' results (none without telemetry)."""
    if not settings.telemetry_interval:
        return None
    from testfleet.store.telemetry import TelemetryStore
    from testfleet.telemetry.monitor import RunMonitor

    monitor = RunMonitor(threshold=settings.anomaly_threshold, min_history=settings.anomaly_min_history)
    monitor.prime(TelemetryStore(store).history())
    return monitor


def _replicate(settings: Settings) -> Any:
    """[tool.testfleet.replicate] with the run's budget resolved; None when replication is off."""
    budget = settings.replicate.resolved_budget(settings.explore)
    return settings.replicate.model_copy(update={"budget": budget}) if budget else None


def _explorer(store: Any, settings: Settings, seed: int) -> Any:
    """``--explore``: the budget, the variants that already ran, the past failures to replay."""
    if not settings.explore:
        return None
    from testfleet.execution.explorer import Budget, Explorer
    from testfleet.store.exploration import failing_variants, known_variants

    common: dict[str, Any] = {"known": known_variants(store), "replay": failing_variants(store),
              "batch_size": 2 * settings.worker_count(), "per_case": settings.explore_per_case}
    if settings.ruleset_b:
        from testfleet.execution.explorer_ab import ABExplorer

        return ABExplorer(Budget.parse(settings.explore), seed, ruleset_a=settings.ruleset,
                          ruleset_b=settings.ruleset_b, share_b=settings.ab, **common)
    return Explorer(Budget.parse(settings.explore), seed, ruleset_path=settings.ruleset, **common)


def _fatal(store: Any, run: Any, outcome: Any, console: Any, wall: float) -> int:
    """A worker's session could not go on (the SUT never started): the run is recorded as an
    error, no report is written, the message is the one thing said."""
    from testfleet.model import RunStatus

    code, message = outcome.fatal
    run.exit_code = code
    run.duration = wall
    run.finished_at = datetime.now(UTC)
    run.status = RunStatus.error
    run.counts = {}
    store.finish_run(run)
    sys.stderr.write(f"ERROR: {message}\n")
    if console.verbosity >= 0:
        console.console.print(f"[dim]run {run.run_id} stopped ({len(outcome.results)} results kept, "
                              "recorded as an error)[/dim]")
    return code


def _finish(store: Any, settings: Settings, run: Any, outcome: Any, console: Any, wall: float,
            store_label: str | None = None, on_report: Any = None) -> int:
    from testfleet.model import RunStatus
    from testfleet.plugins.reports import report_targets
    from testfleet.reporting.summary import count_outcomes, exit_code_for, summary_line

    counts = count_outcomes(outcome.results, outcome.collect_errors, run.deselected)
    if outcome.warnings:
        counts["warnings"] = len(outcome.warnings)
    exit_code = exit_code_for(counts, outcome.collect_errors, interrupted=outcome.interrupted)
    run.counts = counts
    run.exit_code = exit_code
    run.duration = wall
    run.finished_at = datetime.now(UTC)
    run.status = RunStatus.interrupted if exit_code == 2 else RunStatus.finished
    store.finish_run(run)
    written = [str(spec.write(path, run, outcome, store)) for spec, _flag, path in report_targets(settings)]
    if on_report is not None:  # a submitted run: the reports go back to who submitted it
        for path in written:
            on_report(Path(path))
    console.finish(outcome.results, outcome.collect_errors, summary_line(counts, wall, run.flaky),
                   exit_code not in (0, 5), outcome.not_run, outcome.warnings,
                   anomalies=outcome.anomalies, run_id=run.run_id, exploration=outcome.exploration,
                   resilience=outcome.resilience)
    if outcome.replication and console.verbosity >= 0:  # each failure replayed, and its class
        from testfleet.execution.replication import verdict_lines

        for line in verdict_lines(outcome.replication["verdicts"], outcome.replication["spent"],
                                  outcome.replication["budget"]):
            console.console.print(line, markup=False, highlight=False)
    if settings.sut is not None and console.verbosity >= 0:  # artefacts of helpers attached on anomalies
        from testfleet.execution.probes.report import artefact_lines

        for line in artefact_lines(store, run.run_id):
            console.console.print(line, markup=False, highlight=False)
    if settings.chaos and console.verbosity >= 0:  # what was injected, what it broke, recovery
        from testfleet.analysis.recovery_time import fault_lines

        for line in fault_lines(store, run.run_id):
            console.console.print(line, markup=False, highlight=False)
    if console.verbosity >= 0:
        for path in written:
            console.console.print(f"[dim]report: {path}[/dim]")
        console.console.print(f"[dim]run {run.run_id} · store {store_label or settings.store}[/dim]")
    if settings.notify is not None:  # last: a delivery never changes the result (reporting/notify/send.py)
        from testfleet.reporting.notify.send import notify_run

        notify_run(store, settings.notify, run, console=console)
    return exit_code


__all__ = ["RunRequest", "UsageError", "execute"]
