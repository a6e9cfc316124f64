#!/usr/bin/env python
"""The local backend against the Ray backend (a local Ray instance testfleet starts), in one run.

For each suite (1,000 empty tests; 2,000 tests sleeping 1–50 ms, seeded; ``--quick`` shrinks
both) it runs ``testfleet run --workers 2`` with ``--backend local`` and with ``--backend ray`` and
prints, per backend:

* startup: launch -> the first test starting (every test stamps its start into a file named by
  $TF_BENCH_STAMPS; Ray workers get it through the job's env);
* per-test overhead: (last start - first start - sleeps before the last start / workers) / tests,
  in ms: the cost of moving work and results while the fleet runs, fixed start and end excluded;
* shutdown: last start -> the command's exit (sessions ending, Ray shutting down);
* wall time and whether the outcome counts match.

Targets (issue 3): Ray per-test overhead <= 2 ms; Ray startup <= 5 s on a 2-core machine.
One JSON line per figure goes to stdout and bench/results/backends.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suites  # noqa: E402
from vs_xdist import find_testfleet, run_tool  # noqa: E402

WORKERS = 2
TARGET_RAY_OVERHEAD_MS = 2.0
TARGET_RAY_STARTUP_S = 5.0
STAMP_CONFTEST = """\
import os, time



def pytest_runtest_setup(item):
    path = os.environ.get("TF_BENCH_STAMPS")
    if path:
        with open(path, "a") as handle:
            handle.write(f"{time.time()}\\n")
"""


def prepare(suite: suites.Suite, stamps: Path) -> None:
    (suite.path / "conftest.py").write_text(STAMP_CONFTEST)
    # Ray's workers get the stamp file's name through the job's environment.
    (suite.path / "testfleet.toml").write_text(f'ray_env = {{ TF_BENCH_STAMPS = "{stamps}" }}\n')


def emit(out: list[dict], **figure: object) -> None:
    out.append(figure)
    print(json.dumps(figure))


def bench(suite: suites.Suite, tf: list[str], sleep_s: float, out: list[dict], timeout: float) -> bool:
    stamps = suite.path.parent / f"{suite.name}.stamps"
    prepare(suite, stamps)
    runs = {}
    for backend in ("local", "ray"):
        argv = [*tf, "run", "--workers", str(WORKERS), "-q", "--backend", backend,
                "--store", str(suite.path.parent / f"{suite.name}-{backend}.duckdb")]
        launched = time.time()
        runs[backend] = run = run_tool(f"testfleet {backend}", argv, suite.path, timeout, stamps=stamps)
        starts = [float(t) for t in stamps.read_text().split()] if stamps.exists() else []
        run.last_start_s = max(starts) - launched if starts else None
    ok = True
    print(f"\n== {suite.name}: {suite.tests} tests, sleeps sum to {sleep_s:.2f} s")
    for backend, run in runs.items():
        if run.crashed or run.first_result_s is None:
            print(f"   {backend}: FAILED (rc={run.rc})\n{run.output[-2000:]}")
            ok = False
            continue
        span = run.last_start_s - run.first_result_s
        overhead_ms = (span - sleep_s * (suite.tests - 1) / suite.tests / WORKERS) / suite.tests * 1000
        shutdown = run.wall_s - run.last_start_s
        print(f"   {backend:6} wall {run.wall_s:7.2f} s   startup {run.first_result_s:5.2f} s   "
              f"per-test overhead {overhead_ms:6.3f} ms   shutdown {shutdown:5.2f} s   {run.summary}")
        emit(out, suite=suite.name, backend=backend, figure="shutdown_s", value=round(shutdown, 3))
        emit(out, suite=suite.name, backend=backend, figure="wall_s", value=round(run.wall_s, 3))
        emit(out, suite=suite.name, backend=backend, figure="startup_s", value=round(run.first_result_s, 3),
             target=TARGET_RAY_STARTUP_S if backend == "ray" else None,
             met=run.first_result_s <= TARGET_RAY_STARTUP_S if backend == "ray" else None)
        emit(out, suite=suite.name, backend=backend, figure="per_test_overhead_ms", value=round(overhead_ms, 3),
             target=TARGET_RAY_OVERHEAD_MS if backend == "ray" else None,
             met=overhead_ms <= TARGET_RAY_OVERHEAD_MS if backend == "ray" else None)
    if all(not r.crashed for r in runs.values()):
        match = runs["local"].outcomes == runs["ray"].outcomes == suite.expected
        print(f"   counts match: {'yes' if match else 'no'}")
        emit(out, suite=suite.name, figure="counts_match", value=match)
        ok = ok and match
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller suites")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per tool run")
    args = parser.parse_args(argv)
    tf, why = find_testfleet(None)
    if tf is None:
        print(f"testfleet not available: {why}")
        return 1
    try:
        import ray  # noqa: F401
    except ImportError:
        print("Ray is not installed: pip install -e '.[ray]'")
        return 1
    out: list[dict] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="tf-backends-") as tmp:
        root = Path(tmp)
        empty = suites.write_empty(root / "empty", tests=300 if args.quick else 1000, files=10, failing=0, skipped=0)
        ok &= bench(empty, tf, 0.0, out, args.timeout)
        mixed = suites.write_mixed(root / "mixed", tests=300 if args.quick else 2000)
        ok &= bench(mixed, tf, float(mixed.meta["sum_s"]), out, args.timeout)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    with (results / "backends.jsonl").open("a") as handle:
        for figure in out:
            handle.write(json.dumps(figure) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
