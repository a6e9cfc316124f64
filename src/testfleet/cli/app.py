"""The ``testfleet`` command line (typer). ``main`` is the console-script entry point.

Exit codes follow DESIGN.md: ``testfleet run`` uses pytest's (4 for a usage error), every other
command exits 2 for bad input. Everything after a bare ``--`` on ``testfleet run`` goes to pytest
unchanged.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Protocol, runtime_checkable

import typer

from testfleet.atomic import WRITE_ERRNOS, output_error
from testfleet.cli.generate import app as generate_app
from testfleet.cli.rules import app as rules_app
from testfleet.cli.scenarios import app as scenarios_app
from testfleet.cli.snapshot import app as snapshot_app
from testfleet.cli.space import app as space_app
from testfleet.cli.spec import app as spec_app
from testfleet.errors import TestfleetError
from testfleet.settings import MAX_SEED

MAX_ROWS = 2**31 - 1
"""The largest count a listing or a generator takes (DuckDB's LIMIT and numpy both accept it)."""

app = typer.Typer(
    name="testfleet",
    help="Run a pytest suite on a fleet of workers, keep every result in DuckDB, report like pytest.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

RUN_USAGE_EXIT = 4  # pytest's "usage error"
OTHER_USAGE_EXIT = 2


@runtime_checkable
class _ShowsItself(Protocol):
    """typer's click errors (bad flags, bad values) print their usage, hint and message with
    ``show``; a plain ``TyperException`` has only ``format_message``."""

    def show(self) -> None: ...


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def run(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(
        help="Test files, directories or node ids (default: pytest's testpaths or '.').")] = None,
    workers: Annotated[str | None, typer.Option(
        "--workers", "-n", help="Worker processes: a number or 'auto' (one per CPU). Setting: workers.")] = None,
    keyword: Annotated[str | None, typer.Option(
        "-k", help="Only run tests matching the expression, as pytest -k.")] = None,
    markexpr: Annotated[str | None, typer.Option(
        "-m", help="Only run tests matching the mark expression, as pytest -m.")] = None,
    exitfirst: Annotated[bool, typer.Option(
        "-x", "--exitfirst", help="Stop every worker at the first failure.")] = False,
    maxfail: Annotated[int | None, typer.Option(
        "--maxfail", help="Stop after this many failures. Setting: maxfail.")] = None,
    last_failed: Annotated[bool, typer.Option(
        "--lf", "--last-failed", help="Only run the tests that failed last time (from the store).")] = False,
    failed_first: Annotated[bool | None, typer.Option(
        "--ff/--no-ff", "--failed-first/--no-failed-first", help="Run the tests that failed last time first (default: "
                                                                 "on). Setting: failed_first.")] = None,
    dist: Annotated[str | None, typer.Option(
        "--dist", help="load | loadscope | loadfile: how tests are grouped onto workers. Setting: dist.")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Seconds a test may run before its worker is killed and the test reported 'timeout'. "
                          "Setting: timeout.")] = None,
    reruns: Annotated[int | None, typer.Option(
        "--reruns", help="Rerun a failed test up to N times, on another worker when there is one. "
                         "Setting: reruns.")] = None,
    max_worker_restarts: Annotated[int | None, typer.Option(
        "--max-worker-restarts", help="Crashed workers replaced at most this many times (default: 4 per worker). "
                                      "Setting: max_worker_restarts.")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="DuckDB file for results (default .testfleet/testfleet.duckdb). Setting: store.")] = None,
    junitxml: Annotated[str | None, typer.Option(
        "--junitxml", "--junit-xml", help="Write a JUnit XML report. Setting: junitxml.")] = None,
    json_report: Annotated[str | None, typer.Option(
        "--json", help="Write a JSON report (pytest-json-report layout). Setting: json.")] = None,
    md: Annotated[str | None, typer.Option(
        "--md", help="Write a Markdown summary (also to $GITHUB_STEP_SUMMARY). Setting: md.")] = None,
    alluredir: Annotated[str | None, typer.Option(
        "--alluredir", help="Write Allure 2 results to this folder (allure generate DIR). Setting: alluredir.")] = None,
    codequality: Annotated[str | None, typer.Option(
        "--codequality", help="Write the failures as a GitLab Code Quality report (Code Climate JSON). "
                              "Setting: codequality.")] = None,
    html: Annotated[str | None, typer.Option(
        "--html", help="Write one self-contained HTML report (charts included, opens offline). "
                       "Setting: html.")] = None,
    start_method: Annotated[str | None, typer.Option(
        "--start-method", help="auto | fork | spawn: fork collects once for all workers. Setting: "
                               "start_method.")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=MAX_SEED, help="Seed of the run, 0 .. 2**63-1 (recorded; reproduces random choices). "
                                            "Setting: seed.")] = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="local | ray | a plugin's backend: where workers run. Setting: backend.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Join a running Ray cluster: 'auto' or ray://host:port (default: start Ray here). "
                              "Setting: ray_address.")] = None,
    strict_requirements: Annotated[bool | None, typer.Option(
        "--strict-requirements/--no-strict-requirements", help="A test no worker can satisfy is an error, not a skip. "
                                                               "Setting: strict_requirements.")] = None,
    ray_pip: Annotated[list[str] | None, typer.Option(
        "--ray-pip", help="A pip package for the Ray job's runtime_env (repeatable). Setting: ray_pip.")] = None,
    ray_env: Annotated[list[str] | None, typer.Option(
        "--ray-env", help="KEY=VALUE for Ray workers' environment (repeatable). Setting: ray_env.")] = None,
    explore: Annotated[str | None, typer.Option(
        "--explore", help="After the baseline, explore the @testfleet.explore spaces: a number of executions (500) or "
                          "a time (2m). Setting: explore.")] = None,
    explore_per_case: Annotated[int | None, typer.Option(
        "--explore-per-case", help="Explored executions one case may take at most (default: twice its fair share of an "
                                   "--explore count when several cases explore). Setting: explore_per_case.")] = None,
    replicate_budget: Annotated[int | None, typer.Option(
        "--replicate-budget", help="Replays of failures (on the other workers, neighbouring SUT configurations and the "
                                   "same worker again) the run may spend to classify each failure; 0 turns "
                                   "replication off (default: a quarter of an --explore count, off without "
                                   "--explore). Setting: replicate.budget.")] = None,
    ruleset: Annotated[str | None, typer.Option(
        "--ruleset", help="Mutation rules (YAML/JSON) exploration applies when their trigger holds; edits apply during "
                          "the run. Setting: ruleset.")] = None,
    ruleset_b: Annotated[str | None, typer.Option(
        "--ruleset-b", help="A/B test a second ruleset against --ruleset: the exploration budget is split and the "
                            "summary says which found more distinct failures per execution. "
                            "Setting: ruleset_b.")] = None,
    ab: Annotated[float | None, typer.Option(
        "--ab", help="Percent of the exploration budget for --ruleset-b (default 50). Setting: ab.")] = None,
    telemetry_interval: Annotated[float | None, typer.Option(
        "--telemetry-interval", help="Seconds between telemetry samples in each worker; 0 turns telemetry off (default "
                                     "0.1). Setting: telemetry_interval.")] = None,
    metrics_interval: Annotated[float | None, typer.Option(
        "--metrics-interval", help="Seconds between scrapes of the SUT's Prometheus endpoint (default 1). Setting: "
                                   "metrics_interval.")] = None,
    anomaly_threshold: Annotated[float | None, typer.Option(
        "--anomaly-threshold", help="Robust z-score above which a result's metric is an anomaly (default 4). Setting: "
                                    "anomaly_threshold.")] = None,
    anomaly_min_history: Annotated[int | None, typer.Option(
        "--anomaly-min-history", help="Executions of a case needed before its metrics are judged (default 8). Setting: "
                                      "anomaly_min_history.")] = None,
    report: Annotated[list[str] | None, typer.Option(
        "--report", help="NAME=PATH: write a plugin reporter's file (repeatable; `testfleet plugins` lists "
                         "them). Setting: reports.")] = None,
    chaos: Annotated[str | None, typer.Option(
        "--chaos", help="Inject faults while the run goes on: mild, moderate, severe, or a YAML schedule file; each "
                        "fault is an event and the summary says what it broke. Setting: chaos.")] = None,
    # [tool.testfleet.breakers], one flag per key (settings.py puts them into that table)
    breakers: Annotated[bool | None, typer.Option(
        "--breakers/--no-breakers", help="Circuit breakers and escalating recovery (off: plain crash retry and worker "
                                         "replacement). Setting: breakers.enabled.")] = None,
    breaker_cooldown: Annotated[float | None, typer.Option(
        "--breaker-cooldown", help="Seconds an open breaker waits before its probe. "
                                   "Setting: breakers.cooldown.")] = None,
    breaker_consecutive_errors: Annotated[int | None, typer.Option(
        "--breaker-consecutive-errors", help="Infrastructure errors in a row that open a breaker. "
                                             "Setting: breakers.consecutive_errors.")] = None,
    breaker_failure_ratio: Annotated[float | None, typer.Option(
        "--breaker-failure-ratio", help="Share (0-1] of infrastructure errors in the window that opens a breaker. "
                                        "Setting: breakers.failure_ratio.")] = None,
    breaker_window: Annotated[float | None, typer.Option(
        "--breaker-window", help="Seconds of results the failure ratio is taken over. "
                                 "Setting: breakers.window.")] = None,
    breaker_min_calls: Annotated[int | None, typer.Option(
        "--breaker-min-calls", help="Results in the window before the ratio is judged. "
                                    "Setting: breakers.min_calls.")] = None,
    breaker_half_open_probes: Annotated[int | None, typer.Option(
        "--breaker-half-open-probes", help="Tests sent through a half-open breaker. "
                                           "Setting: breakers.half_open_probes.")] = None,
    breaker_quarantine_after: Annotated[int | None, typer.Option(
        "--breaker-quarantine-after", help="Openings of a seat's breakers before it is quarantined for the rest of "
                                           "the run. Setting: breakers.quarantine_after.")] = None,
    handoff: Annotated[bool | None, typer.Option(
        "--handoff/--no-handoff", help="Speculative copies of stragglers on idle workers; the first result wins. "
                                       "Setting: handoff.enabled.")] = None,
    specialise: Annotated[bool | None, typer.Option(
        "--specialise/--no-specialise", help="Give a stressed instance where exploration finds failures more "
                                             "of the fleet (default: during --explore). "
                                             "Setting: specialise.enabled.")] = None,
    helpers: Annotated[bool | None, typer.Option(
        "--helpers/--no-helpers", help="Attach a profiler and a thread dump to a SUT flagged by the anomaly "
                                       "monitor (default: when py-spy is installed). "
                                       "Setting: helpers.enabled.")] = None,
    dashboard: Annotated[bool, typer.Option(
        "--dashboard", help="Serve a live dashboard of this run on 127.0.0.1 while it runs; prints its URL.")] = False,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="Finish an interrupted run (an id, a unique prefix or 'last'): run only its tests that have "
                         "no result yet, with its recorded arguments and settings, into the same run.")] = None,
    resume_into: Annotated[str | None, typer.Option("--resume-into", hidden=True)] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", hidden=True)] = None,
    events_fd: Annotated[int | None, typer.Option("--events-fd", hidden=True)] = None,
    submitted: Annotated[str | None, typer.Option("--submitted", hidden=True)] = None,
    quiet: Annotated[int, typer.Option("-q", "--quiet", count=True, help="Less output.")] = 0,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="One line per test.")] = 0,
) -> None:
    """Run tests on local workers: testfleet run [PATHS] [--workers N|auto] [-- pytest args]."""
    from testfleet.cli.run import RunRequest, execute

    if resume is not None:  # the run's own arguments, run again (cli/resume.py)
        from testfleet.cli.resume import resume_arguments
        from testfleet.errors import UsageError

        if paths:
            raise UsageError("--resume runs the tests of the recorded run: give no paths", place="--resume")
        resumed_id, recorded = resume_arguments(resume, store)
        # reports and verbosity asked for now apply (after the recorded ones, so they win)
        now = [*(["--store", store] if store else []), *(["--junitxml", junitxml] if junitxml else []),
               *(["--json", json_report] if json_report else []), *(["--md", md] if md else []),
               *(["-q"] * quiet), *(["-v"] * verbose)]
        cut = recorded.index("--") if "--" in recorded else len(recorded)
        raise typer.Exit(main(["run", "--resume-into", resumed_id, *recorded[:cut], *now, *recorded[cut:]]))
    if dashboard:
        from testfleet.service.client import run_with_dashboard

        given = sys.argv[1:]
        raise typer.Exit(run_with_dashboard(given[given.index("run") + 1:] if "run" in given else [], store=store))

    request = RunRequest(
        paths=list(paths or []), pytest_extra=list((ctx.obj or {}).get("pytest_args", [])),
        keyword=keyword, markexpr=markexpr, last_failed=last_failed, verbosity=verbose - quiet,
        overrides={
            "workers": _workers(workers), "maxfail": 1 if exitfirst else maxfail, "failed_first": failed_first,
            "dist": dist, "timeout": timeout, "reruns": reruns, "max_worker_restarts": max_worker_restarts,
            "store": store, "junitxml": junitxml, "json_report": json_report, "md": md, "html": html,
            "start_method": start_method, "seed": seed, "backend": backend, "ray_address": ray_address,
            "strict_requirements": strict_requirements, "ray_pip": ray_pip or None,
            "ray_env": _pairs(ray_env, "--ray-env"), "telemetry_interval": telemetry_interval,
            "metrics_interval": metrics_interval, "anomaly_threshold": anomaly_threshold,
            "anomaly_min_history": anomaly_min_history, "explore": explore,
            "ruleset": ruleset, "ruleset_b": ruleset_b, "ab": ab, "explore_per_case": explore_per_case,
            "reports": _pairs(report, "--report"),
            "alluredir": alluredir, "codequality": codequality,
            "chaos": chaos, "replicate_budget": replicate_budget,
            "handoff": handoff, "specialise": specialise, "helpers": helpers,
            "breakers": breakers, "breaker_cooldown": breaker_cooldown,
            "breaker_consecutive_errors": breaker_consecutive_errors, "breaker_failure_ratio": breaker_failure_ratio,
            "breaker_window": breaker_window, "breaker_min_calls": breaker_min_calls,
            "breaker_half_open_probes": breaker_half_open_probes, "breaker_quarantine_after": breaker_quarantine_after,
        },
        argv=list(sys.argv), run_id=run_id, events_fd=events_fd, resume_of=resume_into,
    )
    if submitted:  # a run a server started: what the user typed, and the store they know
        shown = json.loads(submitted)
        request.argv, request.store_label = list(shown["argv"]), str(shown["store"])
    raise typer.Exit(execute(request))


def _pairs(values: list[str] | None, flag: str) -> dict[str, str] | None:
    if not values:
        return None
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=f"'{flag}'")
        pairs[key] = rest
    return pairs


def _workers(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number or 'auto'", param_hint="'--workers'") from None


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default; any other needs a "
                                                     "token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")] = 8642,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file the server owns (default: from "
                                                              "settings).")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="TESTFLEET_TOKEN",
                                              help="Token every client must send (generated and printed when the "
                                                   "address is not loopback).")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="Where submitted runs run: local or ray.")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="The Ray cluster of --backend ray.")] = None,
    max_concurrent_runs: Annotated[int, typer.Option("--max-concurrent-runs", min=1,
                                                     help="Runs that run side by side; the rest wait in order.")] = 1,
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", min=1,
                                               help="Largest project archive accepted.")] = 64,
    allow_origin: Annotated[list[str] | None, typer.Option(
        "--allow-origin", help="Another Origin whose pages may open the WebSockets (repeatable).")] = None,
) -> None:
    """Serve a coordinator: submitted runs, a REST API, a live dashboard."""
    from testfleet.cli.serve import serve
    from testfleet.service.server import ServerOptions

    defaults: list[str] = []
    if backend:
        defaults += ["--backend", backend]
    if ray_address:
        defaults += ["--ray-address", ray_address]
    raise typer.Exit(serve(ServerOptions(host=host, port=port, store=store, token=token,
                                         max_concurrent_runs=max_concurrent_runs, max_upload_mb=max_upload_mb,
                                         allowed_origins=tuple(allow_origin or ()), run_defaults=tuple(defaults))))


@app.command("submit", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                         "help_option_names": ["-h", "--help"]})
def submit_command(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Option("--server", envvar="TESTFLEET_SERVER",
                                               help="The server's URL (default http://127.0.0.1:8642).")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="TESTFLEET_TOKEN",
                                              help="The server's token.")] = None,
) -> None:
    """Send this project to a server and run it there: testfleet submit [PATHS] [run options] [-- pytest args]."""
    from testfleet.service.client import submit

    pytest_args = list((ctx.obj or {}).get("pytest_args", []))
    argv = list(ctx.args) + (["--", *pytest_args] if pytest_args else [])
    raise typer.Exit(submit(argv, server=server, token=token))


@app.command("runs")
def runs_command(
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=MAX_ROWS, help="How many runs to list.")] = 20,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """List the runs in the store, newest first."""
    from testfleet.cli.history import list_runs

    raise typer.Exit(list_runs(limit, store))


@app.command("show")
def show_command(
    ref: Annotated[str, typer.Argument(help="A run id, a unique prefix of one, or 'last'.")] = "last",
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
    events: Annotated[bool, typer.Option("--events", help="The run's collaboration as a timeline: replays, "
                                         "hand-offs, allocation, helpers, breakers, faults, one a line.")] = False,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="With --events: only events of this kind "
                                                   "(repeatable; any event kind, e.g. handoff, outlier).")] = None,
) -> None:
    """Show one run: its summary, failures and flaky tests (--events: its collaboration timeline)."""
    from testfleet.cli.history import show_run

    raise typer.Exit(show_run(ref, store, events=events, kinds=tuple(kind or ())))


@app.command("report")
def report_cmd(
    ref: Annotated[str, typer.Argument(help="A run id, a unique prefix of one, or 'last'.")] = "last",
    html: Annotated[str | None, typer.Option(
        "--html", help="Write one self-contained HTML report of the run here (opens offline).")] = None,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Write the report of a stored run: testfleet report RUN --html FILE."""
    from testfleet.cli.report import report_command

    raise typer.Exit(report_command(ref, html, store))


@app.command("workers")
def workers_command(
    backend: Annotated[str | None, typer.Option("--backend", help="local | ray (default: from settings).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="'auto' or ray://host:port (default: start Ray here).")] = None,
) -> None:
    """Show each worker machine (or Ray node) with its hardware, resources and labels."""
    from testfleet.cli.workers import show_workers

    raise typer.Exit(show_workers(backend, ray_address))


app.add_typer(space_app, name="space")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(spec_app, name="spec")
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(rules_app, name="rules")
app.add_typer(generate_app, name="generate")


@app.command("replay")
def replay_command(
    variant: Annotated[str, typer.Argument(help="A variant id (or a unique prefix) from a report or the store.")],
    configs: Annotated[str | None, typer.Option(
        "--configs", help="Where to restore the run's configuration snapshots (default: "
                          ".testfleet/replay/VARIANT).")] = None,
    run_again: Annotated[bool, typer.Option(
        "--run/--no-run", help="Run the case again after restoring (default) or only restore.")] = True,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Restore the configurations a recorded variant ran with, and run it again with the same seed."""
    from testfleet.cli.replay import replay

    raise typer.Exit(replay(variant, configs, run_again, store))


@app.command("analyze")
def analyze_cmd(
    ref: Annotated[str, typer.Argument(help="A run id, a unique prefix, or 'last'.")] = "last",
    runs: Annotated[int, typer.Option(
        "--runs", min=1, max=MAX_ROWS, help="Analyse this run and the N-1 before it together.")] = 1,
    fdr: Annotated[float, typer.Option(
        "--fdr", help="False discovery rate for the tests (Benjamini–Hochberg).")] = 0.05,
    next_count: Annotated[int, typer.Option(
        "--next", min=0, max=MAX_ROWS, help="Propose this many follow-up variants (one factor changed).")] = 0,
    confirm: Annotated[int, typer.Option(
        "--confirm", min=0, max=MAX_ROWS, help="Run this many of the follow-ups as randomised experiments and say "
                                               "whether each suspect is confirmed.")] = 0,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the analysis as JSON here.")] = None,
    md: Annotated[str | None, typer.Option("--md", help="Write a Markdown summary here.")] = None,
    html: Annotated[str | None, typer.Option("--html", help="Write plotly charts here.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, max=MAX_SEED, help="Seed of the randomised tests and proposals.")] = 0,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Why did it fail? Parameter impact, interactions, rules, failure clusters, flaky tests."""
    from testfleet.cli.analyze import analyze_command

    if not 0 < fdr < 1:
        raise typer.BadParameter("must be between 0 and 1", param_hint="'--fdr'")
    raise typer.Exit(analyze_command(ref, runs, fdr, next_count, json_out, md, html, store, seed,
                                     confirm))


@app.command("plugins")
def plugins_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    builtins: Annotated[bool, typer.Option(
        "--builtins/--no-builtins", help="List testfleet's own providers too (default).")] = True,
) -> None:
    """The installed plugins (entry-point group 'testfleet') and what each provides, per hook."""
    from testfleet.cli.plugins import show_plugins

    raise typer.Exit(show_plugins(json_out, builtins))


@app.command("telemetry")
def telemetry_cmd(
    ref: Annotated[str, typer.Argument(help="A run id, a unique prefix, or 'last'.")] = "last",
    metric: Annotated[str | None, typer.Option(
        "--metric", help="Only metrics matching this glob, e.g. 'sut.*'.")] = None,
    by_worker: Annotated[bool, typer.Option("--by-worker", help="One row per metric and worker.")] = False,
    html: Annotated[str | None, typer.Option(
        "--html", help="Write plotly charts (one per metric) to this HTML file.")] = None,
    png: Annotated[str | None, typer.Option(
        "--png", help="Write the charts as PNG (needs chromium): FILE, FILE-1.png...")] = None,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """What the workers sampled during a run (SUT, worker, system, custom metrics) and the anomalies flagged."""
    from testfleet.cli.telemetry import telemetry_command

    raise typer.Exit(telemetry_command(ref, metric, by_worker, html, png, store))


@app.command("flaky")
def flaky_cmd(
    ref: Annotated[str, typer.Argument(help="The newest run to look at: an id, a prefix, or 'last'.")] = "last",
    runs: Annotated[int, typer.Option("--runs", min=1, max=MAX_ROWS, help="How many runs back to look.")] = 20,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the list as JSON here.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Flaky tests: reruns that passed, and variants whose outcome changed under the same code."""
    from testfleet.cli.analyze import flaky_command

    raise typer.Exit(flaky_command(ref, runs, json_out, store))


@app.command("ci")
def ci_cmd(
    provider: Annotated[str, typer.Argument(help="github | gitlab")],
    paths: Annotated[list[str] | None, typer.Argument(
        help="What `testfleet run` runs (default: pytest's testpaths).")] = None,
    python: Annotated[str, typer.Option("--python", help="Python version of the CI job.")] = "3.12",
    install: Annotated[str, typer.Option(
        "--install", help="What pip installs (your project and testfleet).")] = "testfleet",
    workers: Annotated[str, typer.Option("--workers", "-n", help="Workers of the run in CI.")] = "auto",
    reports: Annotated[str, typer.Option(
        "--reports", help="The folder the reports go to and are uploaded from.")] = "reports",
) -> None:
    """Print a ready CI pipeline: the store cached between runs, every report, artefacts uploaded."""
    from testfleet.cli.ci import print_pipeline

    raise typer.Exit(print_pipeline(provider, paths or [], python, install, workers, reports))


@app.command("badge")
def badge_cmd(
    ref: Annotated[str, typer.Argument(help="A run id, a unique prefix, or 'last'.")] = "last",
    output: Annotated[str, typer.Option("--output", "-o", help="The SVG file to write.")] = "badge.svg",
    label: Annotated[str, typer.Option("--label", help="The badge's left-hand text.")] = "tests",
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Write a status badge (SVG) of a stored run: 'tests | 120 passed', '3 failed' in red..."""
    from testfleet.cli.ci import make_badge

    raise typer.Exit(make_badge(ref, output, label, store))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: split off pytest's arguments after ``--`` and map errors to exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, pytest_args = args[:cut], args[cut + 1:]
    command = next((a for a in args if not a.startswith("-")), None)
    usage_exit = RUN_USAGE_EXIT if command in ("run", "submit", "serve") else OTHER_USAGE_EXIT
    try:
        result = app(args=args, prog_name="testfleet", standalone_mode=False, obj={"pytest_args": pytest_args})
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # bad flags and arguments (typer's click errors)
        if isinstance(exc, _ShowsItself):
            exc.show()
        else:
            print(f"Error: {exc.format_message()}", file=sys.stderr)
        return usage_exit
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 2
    except TestfleetError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return usage_exit
    except OSError as exc:  # a writer outside atomic.py met a full disk or a read-only folder
        if exc.errno not in WRITE_ERRNOS:
            raise
        print(f"ERROR: {output_error(exc.filename or '.', exc)}", file=sys.stderr)
        return usage_exit
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
