#!/usr/bin/env python
"""Many workers on few CPUs: 100 workers running 200 tests of ``time.sleep(1)``.

    python bench/many_workers.py                      # testfleet -n 100 and xdist -n 100, 200 tests
    python bench/many_workers.py --workers 40 --tests 80 --repeat 3
    python bench/many_workers.py --only testfleet --telemetry-interval 0

The sleeps take no CPU, so the ideal wall time is tests / workers seconds (2 s): the rest is the
price of starting, feeding and stopping the fleet (issue 15: it was 152 s on 2 CPUs; target
< 15 s). Each test appends ``time.time()`` to ``$TF_BENCH_STAMPS`` when it starts, so the wall
time splits into phases: launch -> first test started (start-up), first -> last test started
(running), last test started + 1 s -> exit (shutdown). After each run the bench also checks
that no process of the run outlived it (every descendant, found with psutil while it ran, gone
within 2 s of the exit).

Runs alternate tool by tool (``--repeat``); the best wall time of each counts. Prints a table
and one JSON line per figure (appended to bench/results/many_workers.jsonl). Exit 1 when a run
failed, reported other counts than ``N passed``, or left a process behind; the target is
reported, never enforced.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "many_workers.jsonl"
STAMPS_ENV = "TF_BENCH_STAMPS"
TARGET_WALL_S = 15.0

TEST_BODY = """\
import os
import time


def _stamp():
    with open(os.environ["{env}"], "a") as fh:
        fh.write(f"{{time.time()}}\\n")

"""


def write_suite(root: Path, tests: int, seconds: float) -> Path:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    body = TEST_BODY.format(env=STAMPS_ENV)
    body += "".join(f"\ndef test_sleep_{i:04d}():\n    _stamp()\n    time.sleep({seconds})\n\n"
                    for i in range(tests))
    (root / "tests" / "test_sleep.py").write_text(body)
    return root


@dataclass
class Run:
    tool: str
    argv: list[str]
    rc: int | None
    wall_s: float
    output: str
    stamps: list[float] = field(default_factory=list)
    launched: float = 0.0
    exited: float = 0.0
    seen: int = 0  # descendants seen while it ran
    left: list[str] = field(default_factory=list)  # descendants alive 2 s after the exit

    def phases(self, seconds: float) -> dict[str, float | None]:
        if not self.stamps:
            return {"startup_s": None, "running_s": None, "shutdown_s": None}
        first, last = min(self.stamps), max(self.stamps)
        return {"startup_s": first - self.launched, "running_s": last - first,
                "shutdown_s": self.exited - (last + seconds)}


def run_once(tool: str, argv: list[str], cwd: Path, stamps: Path, timeout: float) -> Run:
    stamps.unlink(missing_ok=True)
    env = os.environ | {STAMPS_ENV: str(stamps)}
    launched = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    root = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    chunks: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = started + timeout
    rc: int | None = None
    while True:
        try:
            for child in root.children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.Error:
            pass
        try:
            rc = proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
                break
    wall = time.perf_counter() - started
    exited = time.time()
    reader.join(10)
    left_deadline = time.monotonic() + 2.0
    alive = list(seen.values())
    while alive and time.monotonic() < left_deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.05)
    left = [f"{p.pid} {' '.join(_cmdline(p))[:80]}" for p in alive if _alive(p)]
    for p in alive:  # the bench cleans up what the tool left, so the next run starts clean
        try:
            p.kill()
        except psutil.Error:
            pass
    run = Run(tool, argv, rc, wall, "".join(chunks), launched=launched, exited=exited, seen=len(seen), left=left)
    if stamps.exists():
        run.stamps = [float(t) for t in stamps.read_text().split()]
    return run


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return ["?"]


def find_testfleet() -> list[str]:
    sibling = Path(sys.executable).parent / "testfleet"
    if sibling.exists():
        return [str(sibling)]
    return [sys.executable, "-m", "testfleet"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet and xdist with many workers on a sleeping suite")
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=1.0, help="each test sleeps this long")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", action="append", choices=["testfleet", "xdist"])
    parser.add_argument("--telemetry-interval", type=float, default=None,
                        help="passed to testfleet (default: its own default, telemetry on)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="tf-many-"))
    suite = write_suite(root / "suite", args.tests, args.seconds)
    stamps = root / "stamps.txt"
    tf = find_testfleet()
    tools = args.only or ["testfleet", "xdist"]
    if "xdist" in tools and not _has_xdist():
        print("xdist: not installed, skipped")
        tools = [t for t in tools if t != "xdist"]
    subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "."], cwd=suite,
                   capture_output=True, env=os.environ | {STAMPS_ENV: os.devnull}, timeout=args.timeout)
    commands = {
        "testfleet": [*tf, "run", ".", "--workers", str(args.workers), "-q", "--store", str(root / "s.duckdb"),
                      *([] if args.telemetry_interval is None
                        else ["--telemetry-interval", repr(args.telemetry_interval)])],
        "xdist": [sys.executable, "-m", "pytest", "-q", "-n", str(args.workers), "."],
    }
    runs: dict[str, list[Run]] = {t: [] for t in tools}
    try:
        for _ in range(args.repeat):
            for tool in tools:
                (root / "s.duckdb").unlink(missing_ok=True)
                runs[tool].append(run_once(tool, commands[tool], suite, stamps, args.timeout))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ideal = args.tests * args.seconds / args.workers
    ctx = {"bench": "many_workers", "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "python": platform.python_version(), "cpus": os.cpu_count(), "workers": args.workers,
           "tests": args.tests, "seconds": args.seconds, "repeat": args.repeat,
           "telemetry_interval": args.telemetry_interval}
    print(f"{args.tests} tests of time.sleep({args.seconds:g}) on {args.workers} workers, {os.cpu_count()} CPUs; "
          f"ideal {ideal:.1f} s")
    print(f"  {'tool':<10} {'exit':>4} {'wall s':>8} {'startup':>8} {'running':>8} {'shutdown':>8} "
          f"{'procs':>5} {'left':>4}  summary")
    failed = False
    lines: list[str] = []
    best: dict[str, Run] = {}
    for tool, done in runs.items():
        for run in done:
            ph = run.phases(args.seconds)
            summary = next((ln.strip() for ln in reversed(run.output.splitlines()) if " in " in ln), "")
            ok = run.rc == 0 and f"{args.tests} passed" in summary and not run.left
            failed |= not ok
            print(f"  {tool:<10} {'T/O' if run.rc is None else run.rc:>4} {run.wall_s:>8.2f} "
                  + " ".join(f"{'-' if v is None else format(v, '.2f'):>8}" for v in ph.values())
                  + f" {run.seen:>5} {len(run.left):>4}  {summary[:60]}")
            for line in run.left:
                print(f"      left running: {line}")
            if not ok and run.rc not in (0, None):
                print("      " + "\n      ".join(run.output.splitlines()[-10:]))
        best[tool] = min(done, key=lambda r: r.wall_s)
    for tool, run in best.items():
        figure = ctx | {"tool": tool, "figure": "wall_s", "value": round(run.wall_s, 3), "unit": "s",
                        **{k: None if v is None else round(v, 3) for k, v in run.phases(args.seconds).items()},
                        "left_running": len(run.left)}
        if tool == "testfleet":
            figure |= {"target": TARGET_WALL_S, "met": run.wall_s < TARGET_WALL_S}
        lines.append(json.dumps(figure))
    if "testfleet" in best and "xdist" in best:
        ratio = best["testfleet"].wall_s / best["xdist"].wall_s
        print(f"  testfleet / xdist wall: {ratio:.2f}")
        lines.append(json.dumps(ctx | {"tool": "testfleet", "figure": "wall_over_xdist", "value": round(ratio, 3),
                                       "unit": "ratio"}))
    if "testfleet" in best:
        wall = best["testfleet"].wall_s
        verdict = "met" if wall < TARGET_WALL_S else "MISSED"
        print(f"  testfleet wall {wall:.2f} s (target < {TARGET_WALL_S:g} s: {verdict})")
    print()
    for line in lines:
        print(line)
    if not args.no_save:
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS_FILE.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)
    return 1 if failed else 0


def _has_xdist() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


if __name__ == "__main__":
    sys.exit(main())
