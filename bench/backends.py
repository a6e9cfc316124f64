#!/usr/bin/env python
"""testfleet's local backend against its Ray backend, on the same generated suites, in one run.

    python bench/backends.py             # 1,000 empty tests, then 2,000 tests sleeping 1-50 ms
    python bench/backends.py --quick     # 300 of each
    python bench/backends.py --repeat 3  # best of 3 per backend, interleaved local, ray, local, ...

For each suite it runs, from the suite's directory,

    testfleet run . --workers 2 -q --backend local --store <tmp>/...
    testfleet run . --workers 2 -q --backend ray   --store <tmp>/...   (no --ray-address: testfleet
                                                                       starts a local Ray instance)

and prints, per backend:

* ``startup_s``: launch -> first result, measured as bench/vs_xdist.py measures it: every test
  appends ``time.time()`` to the file named by ``$TF_BENCH_STAMPS`` (here from a ``conftest.py``
  hook, so the generated tests stay bench/suites.py's), first result = earliest stamp - launch;
* ``per_test_overhead_ms`` = (wall - startup - sum(durations) / workers) / tests: what each test
  costs beyond its own run time once the fleet is up (shutdown included);
* ``steady_overhead_ms`` = (last stamp - first stamp - sleeps of all but the last test / workers)
  / tests: the same cost while the fleet runs, start-up and shutdown left out;
* ``shutdown_s`` = exit - last stamp, shown apart because it is part of the first overhead;
* ``wall_s``, and whether the outcome counts of both backends match the suite's.

Targets (reported, never enforced): Ray per-test overhead <= 2 ms, Ray startup <= 5 s.
``empty`` (no sleeps) gives the cleaner overhead figure; ``mixed`` shows it under a realistic load.

Ray runs on loopback only with usage stats off, in a private short temp dir with a private auth
token (``RAY_TMPDIR``, ``RAY_AUTH_TOKEN_PATH``), so that it never joins another instance on the
machine; every process left under that dir after a run is reported and ended.

One JSON line per figure goes to stdout and is appended to bench/results/backends.jsonl. Exit
status: 0 when every run finished with the expected counts (targets met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import suites  # bench/ is not a package; this file must run alone
from vs_xdist import Run, context, find_testfleet, finish_suites, fmt, publish, run_tool, warm_up

RESULTS_FILE = BENCH_DIR / "results" / "backends.jsonl"
BACKENDS = ("local", "ray")
TARGET_RAY_OVERHEAD_MS = 2.0
TARGET_RAY_STARTUP_S = 5.0

STAMP_CONFTEST = f"""\
import os
import time

import pytest


@pytest.hookimpl(tryfirst=True)  # before the skip marker's own setup hook, so skipped tests stamp too
def pytest_runtest_setup(item):
    with open(os.environ["{suites.STAMPS_ENV}"], "a") as fh:
        fh.write(f"{{time.time()!r}}\\n")
"""


# ---------------------------------------------------------------------------- Ray's surroundings


def ray_environment(tmp: Path) -> dict[str, str]:
    """What every Ray process of this benchmark runs with: loopback, no usage stats, private dir."""
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    return {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": str(tmp),
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def processes_under(tmp: Path) -> dict[int, str]:
    """Live processes whose command line names ``tmp``, and their descendants (zombies left out)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            commands[int(entry.name)] = command
        children.setdefault(int(ppid), []).append(int(entry.name))
    ours = {pid for pid, command in commands.items() if str(tmp) in command and pid != os.getpid()}
    todo = list(ours)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in ours and child in commands:
                ours.add(child)
                todo.append(child)
    return {pid: commands[pid] for pid in ours}


def end_leftovers(tmp: Path) -> list[str]:
    """End (by pid) what a run left under ``tmp``; return what was found, for the report."""
    if not Path("/proc").is_dir():
        return []
    found = processes_under(tmp)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_under(tmp):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while processes_under(tmp) and time.monotonic() < deadline:
            time.sleep(0.1)
    return [f"{pid} {command[:100]}" for pid, command in sorted(found.items())]


# ---------------------------------------------------------------------------- one suite


def measure(run: Run, stamps: Path, launched: float, suite: suites.Suite, sleep_s: float, workers: int) -> dict:
    """The figures of one run from its stamps (``run.first_result_s`` is vs_xdist's measure)."""
    times = [float(t) for t in stamps.read_text().split()] if stamps.exists() else []
    fig: dict[str, Any] = {"wall_s": run.wall_s, "startup_s": run.first_result_s, "stamped": len(times),
                           "per_test_overhead_ms": None, "steady_overhead_ms": None, "shutdown_s": None}
    if run.first_result_s is not None and times:
        fig["per_test_overhead_ms"] = (run.wall_s - run.first_result_s - sleep_s / workers) / suite.tests * 1000
        # first start -> last start, less the sleeps of all but (on average) the last test
        before_last = sleep_s * (suite.tests - 1) / suite.tests
        fig["steady_overhead_ms"] = (max(times) - min(times) - before_last / workers) / suite.tests * 1000
        fig["shutdown_s"] = launched + run.wall_s - max(times)
    return fig


def bench_suite(suite: suites.Suite, tf: list[str], args: argparse.Namespace, ray_tmp: Path,
                ctx: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    (suite.path / "conftest.py").write_text(STAMP_CONFTEST)
    stamps = suite.path.parent / f"{suite.name}.stamps"
    warm_up(suite, args.timeout)
    sleep_s = float(suite.meta.get("sum_s", 0.0))  # type: ignore[arg-type]
    best: dict[str, tuple[Run, dict[str, Any]]] = {}
    every: list[Run] = []
    leftovers: list[str] = []
    for i in range(args.repeat):
        for backend in BACKENDS:
            argv = [*tf, "run", ".", "--workers", str(args.workers), "-q", "--backend", backend,
                    "--store", str(suite.path.parent / f"{suite.name}-{backend}-{i}.duckdb")]
            launched = time.time()
            run = run_tool(f"testfleet --backend {backend}", argv, suite.path, args.timeout, stamps)
            every.append(run)
            fig = measure(run, stamps, launched, suite, sleep_s, args.workers)
            if backend == "ray":
                leftovers += end_leftovers(ray_tmp)
            held = best.get(backend)
            if held is None or (held[0].crashed, held[0].wall_s) > (run.crashed, run.wall_s):
                best[backend] = (run, fig)  # the fastest run that did not crash

    expected_rc = 1 if suite.expected.get("failed") or suite.expected.get("error") else 0
    problems: list[str] = []
    for run in every:
        if run.crashed:
            problems.append(f"{run.label}: crashed ({'timed out' if run.rc is None else f'exit {run.rc}'}, "
                            f"summary line {'found' if run.summary else 'missing'})")
        elif run.outcomes != suite.expected:
            problems.append(f"{run.label}: counts {run.outcomes} != expected {suite.expected}")
        elif run.rc != expected_rc:
            problems.append(f"{run.label}: exit code {run.rc} != {expected_rc}")
    for run, fig in best.values():
        if fig["stamped"] != suite.tests and not run.crashed:
            problems.append(f"{run.label}: {fig['stamped']} stamps for {suite.tests} tests "
                            f"(did ${suites.STAMPS_ENV} reach the workers?)")
    if leftovers:
        problems.append(f"Ray processes outlived their run (ended now): {leftovers}")
    ok = not problems

    print(f"\n== {suite.name}: {suite.tests} tests, sleeps sum to {sleep_s:.2f} s, {args.workers} workers, "
          f"expected {suite.expected}")
    print(f"   {'backend':<8} {'exit':>4} {'wall s':>8} {'startup s':>10} {'overhead ms/test':>17} "
          f"{'steady ms/test':>15} {'shutdown s':>11}  summary")
    lines: list[dict[str, Any]] = []
    common = {"suite": suite.name, "tests": suite.tests, "workers": args.workers, "repeat": args.repeat,
              "sum_durations_s": round(sleep_s, 3)}
    for backend in BACKENDS:
        run, fig = best[backend]
        rc = "T/O" if run.rc is None else str(run.rc)
        print(f"   {backend:<8} {rc:>4} {run.wall_s:>8.2f} {fmt(fig['startup_s'], '.3f'):>10} "
              f"{fmt(fig['per_test_overhead_ms'], '.3f'):>17} {fmt(fig['steady_overhead_ms'], '.3f'):>15} "
              f"{fmt(fig['shutdown_s'], '.2f'):>11}  "
              f"{run.summary or '(no summary line)'}")
        for name, unit, target in (("wall_s", "s", None), ("startup_s", "s", TARGET_RAY_STARTUP_S),
                                   ("per_test_overhead_ms", "ms", TARGET_RAY_OVERHEAD_MS),
                                   ("steady_overhead_ms", "ms", None), ("shutdown_s", "s", None)):
            value = fig[name]
            line = ctx | common | {"figure": name, "backend": backend,
                                   "value": None if value is None else round(value, 4), "unit": unit}
            if target is not None and backend == "ray":
                line |= {"target": target, "target_op": "<=",
                         "met": None if value is None or not ok else value <= target}
            if not ok:
                line["valid"] = False
            lines.append(line)
    for line in lines:
        if "target" in line:
            met = {True: "met", False: "MISSED", None: "n/a"}[line["met"]]
            print(f"   {line['figure']:<22} ray {fmt(line['value'], '.4g'):>10} {line['unit']}   "
                  f"(target <= {line['target']}: {met})")
    print(f"   counts match: {'yes' if ok else 'no'}")
    for problem in problems:
        print(f"     - {problem}")
    for run in every:
        if run.crashed:
            tail = "\n".join(run.output.splitlines()[-15:])
            print(f"   --- last output of {run.label}:\n{tail}")
    lines.append(ctx | common | {"figure": "counts_match", "backend": "-", "value": ok, "unit": "bool"})
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet's local backend against its Ray backend.")
    parser.add_argument("--quick", action="store_true", help="300 tests in each suite instead of 1,000 / 2,000")
    parser.add_argument("--only", action="append", choices=["empty", "mixed"], help="run only this suite")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend, interleaved; the best counts")
    parser.add_argument("--workers", type=int, default=2, help="workers per run (default 2)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the 'mixed' durations")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    parser.add_argument("--testfleet", help="the testfleet command to run (default: found on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the generated suites and print where")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS_FILE}")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    tf, why = find_testfleet(args.testfleet)
    if tf is None:
        print(f"testfleet is not available: {why}")
        return 1
    try:
        ray_version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        print("Ray is not installed: pip install -e '.[ray]'")
        return 1
    print(f"testfleet: {' '.join(tf)}; ray {ray_version}")
    ctx = context() | {"bench": "backends", "ray": ray_version, "quick": args.quick}

    root = Path(tempfile.mkdtemp(prefix="tf-backends-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="tfb-", dir="/tmp"))  # short: Ray's socket paths live here
    saved = {k: os.environ.get(k) for k in ("RAY_ADDRESS", *ray_environment(ray_tmp))}
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.update(ray_environment(ray_tmp))  # run_tool's runs inherit it
    lines: list[str] = []
    failed = False
    try:
        tests = 300 if args.quick else None
        makers = {
            "empty": lambda: suites.write_empty(root / "empty", tests=tests or 1000, files=10),
            "mixed": lambda: suites.write_mixed(root / "mixed", tests=tests or 2000, seed=args.seed),
        }
        for name in args.only or list(makers):
            figures, ok = bench_suite(makers[name](), tf, args, ray_tmp, ctx)
            failed |= not ok
            lines += [json.dumps(figure) for figure in figures]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        left = end_leftovers(ray_tmp)
        if left:
            print(f"ended Ray processes left behind: {left}")
        shutil.rmtree(ray_tmp, ignore_errors=True)
        finish_suites(root, args.keep)
    publish(lines, RESULTS_FILE, save=not args.no_save)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
