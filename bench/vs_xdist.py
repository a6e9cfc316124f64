#!/usr/bin/env python
"""testfleet against plain pytest and pytest-xdist, side by side, on generated suites.

    python bench/vs_xdist.py            # full run (a few minutes)
    python bench/vs_xdist.py --quick    # the "mixed" suite shrinks to 400 tests
    python bench/vs_xdist.py --only empty --repeat 3

Suites (written by bench/suites.py into a temporary directory):

  empty  4,000 empty tests over 40 files (3,990 pass, 5 fail, 5 skip).
         Figure: overhead per test over serial pytest, (tool_wall - pytest_wall) / 4000, ms,
         for xdist and for testfleet with telemetry on (its default) and off; the same in CPU
         time; and telemetry's own cost, (on - off) / 4000, in wall and CPU time.
  mixed  2,000 tests sleeping 1-50 ms (seeded). testfleet runs twice on one store, the
         second time with duration history. Figure: testfleet wall / xdist wall; the
         lower bound sum(durations) / workers is printed next to it.
  heavy  10 modules with expensive imports, 200 tests. Figure: time to first result with
         1 worker vs 4 workers, as growth %, for testfleet and for xdist.

Every run's final summary line is parsed and the outcome counts compared with the
expected ones and across tools. Prints a table, then one JSON line per figure, which is
also appended to bench/results/vs_xdist.jsonl. Exits 0 even when a target is missed;
1 when a tool crashed, timed out, or reported different counts or exit codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import suites  # noqa: E402  (bench/ is not a package; this file must run alone)

RESULTS_FILE = BENCH_DIR / "results" / "vs_xdist.jsonl"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
OUTCOME_WORDS = {"passed", "failed", "skipped", "xfailed", "xpassed", "error", "deselected"}
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SUMMARY_RE = re.compile(r"^=*\s*(?P<body>.*?)\s+in\s+[\d.]+\s*s\b.*?=*\s*$")
COUNT_RE = re.compile(r"^(\d+) ([A-Za-z_-]+)$")

TARGET_OVERHEAD_MS = 0.2
TARGET_MIXED_RATIO = 0.8
TARGET_FIRST_RESULT_GROWTH_PCT = 10.0


# ---------------------------------------------------------------------------- running tools


@dataclass
class Run:
    label: str
    argv: list[str]
    rc: int | None  # None: timed out
    wall_s: float
    output: str
    summary: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    first_result_s: float | None = None
    cpu_s: float | None = None  # user + system CPU of the tool's whole process tree

    @property
    def outcomes(self) -> dict[str, int]:
        """The counts that must agree across tools (not warnings, not 'flaky' or 'rerun')."""
        return {k: v for k, v in self.counts.items() if k in OUTCOME_WORDS}

    @property
    def crashed(self) -> bool:
        return self.rc is None or self.rc not in (0, 1) or self.summary is None


def parse_summary(output: str) -> tuple[str | None, dict[str, int]]:
    """Find pytest's final summary line ("=== 3 passed, 1 skipped in 1.23s ===") and count it."""
    for raw in reversed(ANSI_RE.sub("", output).splitlines()):
        line = raw.strip()
        match = SUMMARY_RE.match(line)
        if not match:
            continue
        parts = [p.strip() for p in match["body"].split(",")]
        pairs = [COUNT_RE.match(p) for p in parts]
        if match["body"] == "no tests ran":
            return line, {}
        if all(pairs):
            counts: dict[str, int] = {}
            for m in pairs:
                assert m is not None
                word = {"errors": "error", "warnings": "warning"}.get(m[2], m[2])
                counts[word] = counts.get(word, 0) + int(m[1])
            return line, counts
    return None, {}


def run_tool(label: str, argv: list[str], cwd: Path, timeout: float, stamps: Path | None = None) -> Run:
    env = os.environ.copy()
    if stamps is not None:
        stamps.unlink(missing_ok=True)
        env[suites.STAMPS_ENV] = str(stamps)
    launched = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the tool's own process group: its workers too
        output, _ = proc.communicate()
        rc = None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = Run(label, argv, rc, wall, output)
    # every process of the tree is reaped by its parent, so its CPU time adds up here: a figure
    # that a busy machine disturbs far less than wall time
    run.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run.summary, run.counts = parse_summary(output)
    if stamps is not None and stamps.exists():
        times = [float(t) for t in stamps.read_text().split()]
        run.first_result_s = min(times) - launched if times else None
    return run


Sequence = list[tuple[str, list[str], Path | None]]  # (label, argv, stamps file) run back to back


def round_robin(specs: dict[str, Any], repeat: int, cwd: Path, timeout: float,
                key: Any = lambda r: r.wall_s) -> tuple[dict[str, list[Run]], list[Run]]:
    """Run every spec ``repeat`` times, interleaved (a, b, c, a, b, c, ...) so that drift in
    the machine's load hits every tool alike.

    A spec maps a name to ``make(i) -> Sequence``: the runs of one repetition, done back to
    back (testfleet's first and second run on one store). Returns, per spec, the best run of
    each position in its sequence by ``key``, and every run made.
    """
    done: dict[str, list[list[Run]]] = {name: [] for name in specs}
    for i in range(repeat):
        for name, make in specs.items():
            done[name].append([run_tool(label, argv, cwd, timeout, stamps) for label, argv, stamps in make(i)])
    best = {name: [min(position, key=key) for position in zip(*reps)] for name, reps in done.items()}
    every = [run for reps in done.values() for seq in reps for run in seq]
    return best, every


def find_testfleet(override: str | None) -> tuple[list[str] | None, str]:
    """The testfleet command of this environment, or None and why not."""
    candidates: list[list[str]] = []
    if override:
        candidates.append(override.split())
    sibling = Path(sys.executable).parent / "testfleet"  # same environment as the pytest we run
    if sibling.exists():
        candidates.append([str(sibling)])
    if which := shutil.which("testfleet"):
        candidates.append([which])
    candidates.append([sys.executable, "-m", "testfleet"])
    reasons: list[str] = []
    for cmd in candidates:
        try:
            probe = subprocess.run([*cmd, "run", "--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{' '.join(cmd)}: {exc}")
            continue
        if probe.returncode == 0:
            return cmd, ""
        last = (probe.stderr or probe.stdout).strip().splitlines()
        reasons.append(f"`{' '.join(cmd)} run --help` exited {probe.returncode}: {last[-1] if last else ''}")
    return None, reasons[0] if reasons else "not installed"


def warm_up(suite: suites.Suite, timeout: float) -> None:
    """Collect once so every tool finds the same bytecode and assertion-rewrite caches."""
    subprocess.run([*PYTEST, "--collect-only", "."], cwd=suite.path, capture_output=True, timeout=timeout,
                   env=os.environ | {suites.STAMPS_ENV: os.devnull})


# ---------------------------------------------------------------------------- the suites


@dataclass
class SuiteReport:
    suite: suites.Suite
    runs: list[Run] = field(default_factory=list)  # every run, for the counts check
    shown: list[Run] = field(default_factory=list)  # the runs the table shows
    figures: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, name: str, tool: str, value: float | None, unit: str, target: float | None = None,
               strict: bool = False, **extra: Any) -> None:
        """Record a figure; with a target, lower is better (``strict``: must be below it)."""
        fig: dict[str, Any] = {"suite": self.suite.name, "figure": name, "tool": tool,
                               "value": None if value is None else round(value, 4), "unit": unit}
        if target is not None:
            fig["target"] = target
            fig["target_op"] = "<" if strict else "<="
            fig["met"] = None if value is None else (value < target if strict else value <= target)
        fig.update(extra)
        self.figures.append(fig)

    def check(self) -> tuple[bool, bool, list[str]]:
        """(any crashed, counts and exit codes all as expected, problems).

        A figure that rests on a wrong run is marked ``valid: false`` and its target "n/a".
        """
        expected_rc = 1 if self.suite.expected.get("failed") or self.suite.expected.get("error") else 0
        problems: list[str] = []
        crashed = False
        wrong_tools: set[str] = set()
        for run in self.runs:
            if run.crashed:
                crashed = True
                state = "timed out" if run.rc is None else f"exit {run.rc}"
                problems.append(f"{run.label}: crashed ({state}, summary line {'found' if run.summary else 'missing'})")
            elif run.outcomes != self.suite.expected:
                problems.append(f"{run.label}: counts {run.outcomes} != expected {self.suite.expected}")
            elif run.rc != expected_rc:
                problems.append(f"{run.label}: exit code {run.rc} != pytest's {expected_rc}")
            else:
                continue
            wrong_tools.add(run.label.split()[0])
        for fig in self.figures:
            if "pytest" in wrong_tools or fig["tool"].split("_")[0] in wrong_tools:
                fig["valid"] = False
                if "met" in fig:
                    fig["met"] = None
        return crashed, not problems, problems


def bench_empty(root: Path, tf: list[str] | None, args: argparse.Namespace) -> SuiteReport:
    suite = suites.write_empty(root / "empty")
    rep = SuiteReport(suite)
    warm_up(suite, args.timeout)
    w = args.workers
    specs: dict[str, Any] = {
        "pytest": lambda i: [("pytest", [*PYTEST, "."], None)],
        "xdist": lambda i: [(f"xdist -n {w}", [*PYTEST, "-n", str(w), "."], None)],
    }
    if tf:  # a fresh store each time: no history to help or hinder; telemetry on (the default) and off
        specs["testfleet"] = lambda i: [(f"testfleet --workers {w}", [
            *tf, "run", ".", "--workers", str(w), "-q", "--store", str(root / f"tf-empty-{i}.duckdb")], None)]
        specs["testfleet_telemetry_off"] = lambda i: [(f"testfleet --workers {w} --telemetry-interval 0", [
            *tf, "run", ".", "--workers", str(w), "-q", "--telemetry-interval", "0",
            "--store", str(root / f"tf-empty-off-{i}.duckdb")], None)]
    best, rep.runs = round_robin(specs, args.repeat, suite.path, args.timeout)
    serial = best["pytest"][0]
    for name, (run,) in best.items():
        rep.shown.append(run)
        rep.figure("wall_s", name, run.wall_s, "s", tests=suite.tests, workers=1 if name == "pytest" else w)
        rep.figure("cpu_s", name, run.cpu_s, "s", tests=suite.tests, workers=1 if name == "pytest" else w)
        if name != "pytest":
            rep.figure("overhead_per_test_ms", name, (run.wall_s - serial.wall_s) / suite.tests * 1000, "ms",
                       target=TARGET_OVERHEAD_MS if name.startswith("testfleet") else None,
                       tests=suite.tests, workers=w)
            if run.cpu_s is not None and serial.cpu_s is not None:
                rep.figure("cpu_overhead_per_test_ms", name, (run.cpu_s - serial.cpu_s) / suite.tests * 1000, "ms",
                           tests=suite.tests, workers=w)
    if "testfleet" in best and "testfleet_telemetry_off" in best:
        # what telemetry alone costs, on vs off in the same round robin: less noisy than either
        # overhead on a shared machine, where serial pytest's own time swings
        (on,), (off,) = best["testfleet"], best["testfleet_telemetry_off"]
        rep.figure("telemetry_cost_per_test_ms", "testfleet", (on.wall_s - off.wall_s) / suite.tests * 1000,
                   "ms", tests=suite.tests, workers=w)
        if on.cpu_s is not None and off.cpu_s is not None:
            rep.figure("telemetry_cpu_cost_per_test_ms", "testfleet",
                       (on.cpu_s - off.cpu_s) / suite.tests * 1000, "ms", tests=suite.tests, workers=w)
    return rep


def bench_mixed(root: Path, tf: list[str] | None, args: argparse.Namespace) -> SuiteReport:
    suite = suites.write_mixed(root / "mixed", tests=400 if args.quick else 2000, seed=args.seed)
    rep = SuiteReport(suite)
    warm_up(suite, args.timeout)
    w = args.workers
    total = float(suite.meta["sum_s"])  # type: ignore[arg-type]
    bound = total / w
    common = {"tests": suite.tests, "workers": w, "seed": args.seed}

    def testfleet_twice(i: int) -> Sequence:
        assert tf is not None
        cmd = [*tf, "run", ".", "--workers", str(w), "-q", "--store", str(root / f"tf-mixed-{i}.duckdb")]
        return [(f"testfleet --workers {w} (1st)", cmd, None), (f"testfleet --workers {w} (2nd)", cmd, None)]

    specs: dict[str, Any] = {
        "pytest": lambda i: [("pytest", [*PYTEST, "."], None)],
        "xdist": lambda i: [(f"xdist -n {w}", [*PYTEST, "-n", str(w), "."], None)],
    }
    if tf:  # the 1st run starts from an empty store, the 2nd has the 1st's durations
        specs["testfleet"] = testfleet_twice
    best, rep.runs = round_robin(specs, args.repeat, suite.path, args.timeout)
    (serial,), (xdist,) = best["pytest"], best["xdist"]
    rep.shown += [serial, xdist, *best.get("testfleet", [])]
    rep.figure("sum_durations_s", "-", total, "s", **common)
    rep.figure("lower_bound_s", "-", bound, "s", **common)
    rep.figure("serial_over_workers_s", "-", serial.wall_s / w, "s", **common)
    rep.figure("wall_s", "pytest", serial.wall_s, "s", **common | {"workers": 1})
    rep.figure("wall_s", "xdist", xdist.wall_s, "s", **common)
    rep.figure("bound_over_wall", "xdist", bound / xdist.wall_s, "ratio", **common)
    for tag, run in zip(("testfleet_first", "testfleet_second"), best.get("testfleet", [])):
        rep.figure("wall_s", tag, run.wall_s, "s", **common)
        rep.figure("wall_over_xdist", tag, run.wall_s / xdist.wall_s, "ratio", target=TARGET_MIXED_RATIO, **common)
        rep.figure("bound_over_wall", tag, bound / run.wall_s, "ratio", **common)
    rep.notes.append(f"seed {args.seed}; sleeps sum to {total:.2f} s, so {w} workers need at least {bound:.2f} s; "
                     f"xdist took {xdist.wall_s:.2f} s, so no tool can score below {bound / xdist.wall_s:.2f} "
                     f"on wall_over_xdist (target {TARGET_MIXED_RATIO}); serial pytest / {w} = "
                     f"{serial.wall_s / w:.2f} s is the bound once pytest's own per-test cost is counted")
    return rep


def bench_heavy(root: Path, tf: list[str] | None, args: argparse.Namespace) -> SuiteReport:
    suite = suites.write_heavy(root / "heavy")
    rep = SuiteReport(suite)
    warm_up(suite, args.timeout)
    stamps = root / "stamps.txt"
    specs: dict[str, Any] = {}
    for n in (1, 4):
        specs[f"xdist {n}"] = lambda i, n=n: [(f"xdist -n {n}", [*PYTEST, "-n", str(n), "."], stamps)]
        if tf:
            specs[f"testfleet {n}"] = lambda i, n=n: [(f"testfleet --workers {n}", [
                *tf, "run", ".", "--workers", str(n), "-q", "--store", str(root / f"tf-heavy-{n}-{i}.duckdb")],
                stamps)]
    # the figure is time to first result, so the best run is the one that was best at that
    best, rep.runs = round_robin(specs, args.repeat, suite.path, args.timeout,
                                 key=lambda r: r.first_result_s if r.first_result_s is not None else float("inf"))
    for tool in ("xdist", "testfleet") if tf else ("xdist",):
        (one,), (four,) = best[f"{tool} 1"], best[f"{tool} 4"]
        rep.shown += [one, four]
        for n, run in ((1, one), (4, four)):
            rep.figure("first_result_s", tool, run.first_result_s, "s", tests=suite.tests, workers=n)
            rep.figure("wall_s", tool, run.wall_s, "s", tests=suite.tests, workers=n)
        growth = None
        if one.first_result_s and four.first_result_s is not None:
            growth = (four.first_result_s - one.first_result_s) / one.first_result_s * 100
        rep.figure("first_result_growth_pct", tool, growth, "%",
                   target=TARGET_FIRST_RESULT_GROWTH_PCT if tool == "testfleet" else None, strict=True,
                   tests=suite.tests, workers="1->4")
    rep.notes.append(f"{os.cpu_count()} CPUs on this machine; with 4 workers, each importing "
                     f"{suite.meta['modules']} heavy modules, workers compete for them when there are fewer")
    return rep


# ---------------------------------------------------------------------------- output


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(rep: SuiteReport) -> tuple[bool, bool]:
    s = rep.suite
    print(f"\n== {s.name}: {s.tests} tests, expected {s.expected}")
    print(f"   {'tool':<30} {'exit':>4} {'wall s':>8} {'1st result s':>12}  summary")
    for run in rep.shown:
        rc = "T/O" if run.rc is None else str(run.rc)
        print(f"   {run.label:<30} {rc:>4} {run.wall_s:>8.2f} {fmt(run.first_result_s, '.3f'):>12}  "
              f"{run.summary or '(no summary line)'}")
    crashed, ok, problems = rep.check()
    for fig in rep.figures:
        if fig["figure"] in ("wall_s",):
            continue
        target = ""
        if "target" in fig:
            met = {True: "met", False: "MISSED", None: "n/a"}[fig["met"]]
            target = f"   (target {fig['target_op']} {fig['target']}: {met})"
        tool = fig["tool"] if fig["figure"] != "first_result_s" else f"{fig['tool']} x{fig['workers']}"
        print(f"   {fig['figure']:<24} {tool:<18} {fmt(fig['value'], '.4g'):>10} {fig['unit']}{target}")
    for note in rep.notes:
        print(f"   note: {note}")
    print(f"   counts match: {'yes' if ok else 'no'}")
    for problem in problems:
        print(f"     - {problem}")
    for run in rep.runs:
        if run.crashed:
            tail = "\n".join(run.output.splitlines()[-15:])
            print(f"   --- last output of {run.label} ({' '.join(run.argv)}):\n{tail}")
    return crashed, ok


def context() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        sha = None
    return {"bench": "vs_xdist", "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "git_sha": sha, "python": platform.python_version(), "cpus": os.cpu_count(),
            "pytest": version("pytest"), "xdist": version("pytest-xdist"), "testfleet": version("testfleet")}


def finish_suites(root: Path, keep: bool) -> None:
    """Remove the generated suites, or say where they are kept."""
    if keep:
        print(f"\ngenerated suites kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


def publish(lines: list[str], results_file: Path, *, save: bool) -> None:
    """Print the figures' JSON lines and append them to ``results_file``."""
    print()
    for line in lines:
        print(line)
    if save:
        results_file.parent.mkdir(parents=True, exist_ok=True)
        with results_file.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet vs pytest and pytest-xdist on generated suites.")
    parser.add_argument("--quick", action="store_true", help="400 tests instead of 2,000 in the 'mixed' suite")
    parser.add_argument("--only", action="append", choices=["empty", "mixed", "heavy"],
                        help="run only this suite (repeatable)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per tool and setting, interleaved; the best counts "
                             "(default: 3 for 'empty' and 'heavy', 1 for 'mixed')")
    parser.add_argument("--workers", type=int, default=2, help="workers for 'empty' and 'mixed' (default 2)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the 'mixed' durations")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one tool run may take")
    parser.add_argument("--testfleet", help="the testfleet command to run (default: found on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the generated suites and print where")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS_FILE}")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")

    tf, why = find_testfleet(args.testfleet)
    print(f"testfleet: {' '.join(tf) if tf else f'skipped ({why})'}")
    ctx = context() | {"quick": args.quick}
    root = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    benches = {"empty": bench_empty, "mixed": bench_mixed, "heavy": bench_heavy}
    failed = False
    lines: list[str] = []
    try:
        for name in args.only or list(benches):
            suite_args = argparse.Namespace(**vars(args))
            suite_args.repeat = args.repeat or (1 if name == "mixed" else 3)
            rep = benches[name](root, tf, suite_args)
            crashed, ok = print_report(rep)
            failed |= crashed or not ok
            lines += [json.dumps(ctx | {"repeat": suite_args.repeat} | fig) for fig in rep.figures]
            lines.append(json.dumps(ctx | {"repeat": suite_args.repeat, "suite": name, "figure": "counts_match",
                                           "tool": "-", "value": ok, "unit": "bool"}))
    finally:
        finish_suites(root, args.keep)
    publish(lines, RESULTS_FILE, save=not args.no_save)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
