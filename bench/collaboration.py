#!/usr/bin/env python
"""A collaborating fleet (issue 20), one part at a time: ``--part NAME`` (repeatable; default all).

    python bench/collaboration.py --part handoff                 # ~6 minutes on 2 cores
    python bench/collaboration.py --part handoff --tests 40 --handoff-workers 2 --no-save
    python bench/collaboration.py --part replication            # ~1-3 minutes on 2 cores
    python bench/collaboration.py --part replication --cases 12 --no-save
    python bench/collaboration.py --part allocation             # ~15-25 minutes on 2 cores
    python bench/collaboration.py --part allocation --runs-allocation 3 --explore 100 --no-save

Parts (each writes its own JSON lines; the other parts of issue 20 are added beside this one):

``handoff`` — speculative copies of stragglers. A generated suite of ``--tests`` tests (default
40), each sleeping its own duration, drawn once from ``--seed`` (0.3-1.5 s). On a given run, an
execution is 10x slower when a seeded hash of (test, run seed, execution number) falls under
5 %: which tests straggle changes with each run, so history cannot predict it, but not with the
worker a test lands on, so both arms of a run seed meet the same stragglers (a copy is the test's
second execution: slow only by its own 5 % chance). One warm-up run without slowness gives
every test its history; then, for each of ``--runs`` run seeds, ``testfleet run --workers 2``
with ``[tool.testfleet.handoff] enabled = true`` and ``false`` (its default thresholds: 3x
history and 2 s more), alternating which goes first, each on its own copy of the warm store so
both see the same history. Figures: wall time (launch to exit) per arm, summed over the runs,
and ``wall_reduction_pct`` = 1 - on/off (target >= 20 %); stragglers copied and copies that won
(the store's ``handoff`` events); and whether every run kept exactly one passed result per test.

``replication`` — failures replayed at once on the other worker, neighbouring SUT configurations
and the same worker, and classified; planted defects of each class (see
``bench/collab_replication.py``). Figures: classification accuracy (target >= 90 %) and
executions spent per classification.

``helpers`` — a profiler attached to the SUT on an anomaly (see ``bench/collab_helpers.py``):
wall time with the profiler attached vs helpers off (median ratio, target <= 1.05), and whether
the flame graph names the function planted in the SUT.
``allocation`` — specialisation on vs off: explored executions until a load-dependent defect is
first found (see ``bench/collab_allocation.py``); medians over seeds and their ratio (target >= 2).
One JSON line per figure goes to stdout and is appended to bench/results/collaboration.jsonl.
Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collab_allocation import part_allocation
from collab_handoff_bound import simulate
from collab_helpers import part_helpers
from collab_replication import part_replication
from vs_xdist import context, publish

from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

RESULTS = Path(__file__).resolve().parent / "results" / "collaboration.jsonl"
HANDOFF_TARGET_PCT = 20.0

# Each test sleeps its duration, times 10 on an execution the hash picks (5 %): the run seed comes
# from the environment, so the same suite straggles differently on every run, and the same way in
# both arms of a run seed (the hash keys on the execution's number, not on the worker, so which
# worker a test lands on changes nothing; a copy is execution 1, slow by its own 5 % chance).
SLOW_SUITE = """
import hashlib
import os
import time
from pathlib import Path

import pytest

DURATIONS = {durations!r}


def execution(name):
    # 0 for a test's first execution in this run, 1 for the next (a speculative copy): claimed
    # with an exclusive create, so two copies running at once never get the same number
    marks = Path(os.environ["TF_BENCH_MARKS"])
    n = 0
    while True:
        try:
            (marks / f"{{name}}.{{n}}").touch(exist_ok=False)
            return n
        except FileExistsError:
            n += 1


def slow(name):
    seed = os.environ.get("TF_BENCH_RUN_SEED")
    if seed is None:
        return False
    key = f"{{name}}|{{seed}}|{{execution(name)}}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < 0.05


@pytest.mark.parametrize("n", range(len(DURATIONS)))
def test_work(n):
    time.sleep(DURATIONS[n] * (10 if slow(f"test_work[{{n}}]") else 1))
"""


def handoff_durations(tests: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(0.3, 1.5), 3) for _ in range(tests)]


def run_seeds(seed: int, runs: int) -> list[int]:
    """The run seeds of the measured runs (and of the simulation, which replays the same draws)."""
    return [seed * 1000 + k for k in range(runs)]


def write_handoff_suite(folder: Path, tests: int, seed: int) -> None:
    durations = handoff_durations(tests, seed)
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "tests" / "test_work.py").write_text(SLOW_SUITE.format(durations=durations))


def run_testfleet(folder: Path, store: Path, *, handoff: bool, run_seed: int | None,
                  timeout: float, workers: int = 2) -> dict[str, Any]:
    (folder / "testfleet.toml").write_text(f"[handoff]\nenabled = {'true' if handoff else 'false'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}
    env.pop("TF_BENCH_RUN_SEED", None)
    if run_seed is not None:
        env["TF_BENCH_RUN_SEED"] = str(run_seed)
    marks = Path(tempfile.mkdtemp(prefix="tf-marks-", dir=store.parent))
    env["TF_BENCH_MARKS"] = str(marks)
    env["PYTEST_ADDOPTS"] = "-p no:randomly"
    started = time.monotonic()
    command = [sys.executable, "-m", "testfleet", "run", "--store", str(store), "--workers", str(workers), "-q"]
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        results = db.results(run.run_id)
        events = TelemetryStore(db).events(run.run_id, ["handoff"])
    per_test: dict[str, list[str]] = {}
    for result in results:
        per_test.setdefault(result.nodeid, []).append(result.outcome.value)
    return {"wall_s": wall, "exit": proc.returncode, "tail": proc.stdout[-400:] + proc.stderr[-400:],
            "once_each": all(v == ["passed"] for v in per_test.values()), "tests": len(per_test),
            "copied": sum(1 for e in events if e.get("action") == "start"),
            "copy_won": sum(1 for e in events if e.get("action") == "result"
                            and e.get("winner_origin") == "speculative")}


def part_handoff(args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="tf-collab-"))
    try:
        folder = root / "suite"
        write_handoff_suite(folder, args.tests, args.seed)
        warm = root / "warm.duckdb"
        workers = args.handoff_workers
        first = run_testfleet(folder, warm, handoff=False, run_seed=None, timeout=args.timeout, workers=workers)
        if first["exit"] != 0:
            print(f"warm-up run failed (exit {first['exit']}):\n{first['tail']}")
            return []
        arms: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        print(f"{'run seed':>9} {'arm':>4} {'wall s':>7} {'copied':>7} {'copy won':>9} {'one result each':>16}")
        for k, run_seed in enumerate(run_seeds(args.seed, args.runs)):
            order = ("on", "off") if k % 2 == 0 else ("off", "on")
            for arm in order:
                store = root / f"{arm}-{k}.duckdb"
                shutil.copy(warm, store)
                ran = run_testfleet(folder, store, handoff=arm == "on", run_seed=run_seed, timeout=args.timeout,
                                    workers=workers)
                arms[arm].append(ran)
                print(f"{run_seed:>9} {arm:>4} {ran['wall_s']:>7.1f} {ran['copied']:>7} {ran['copy_won']:>9} "
                      f"{'yes' if ran['once_each'] and ran['tests'] == args.tests else 'NO':>16}"
                      + ("" if ran["exit"] == 0 else f"  exit {ran['exit']}: {ran['tail']!r}"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    on = sum(r["wall_s"] for r in arms["on"])
    off = sum(r["wall_s"] for r in arms["off"])
    valid = all(r["exit"] == 0 and r["once_each"] and r["tests"] == args.tests for rs in arms.values() for r in rs)
    reduction = 100.0 * (1.0 - on / off) if off else None
    print(f"\nwall, {args.runs} runs of {args.tests} tests on {workers} workers: hand-off on {on:.1f} s, "
          f"off {off:.1f} s: {reduction:.1f} % less (target >= {HANDOFF_TARGET_PCT:.0f} %)"
          if reduction is not None else "")
    durations = handoff_durations(args.tests, args.seed)
    bound = {name: simulate(durations, seeds, workers)
             for name, seeds in (("these runs", run_seeds(args.seed, args.runs)),
                                 ("300 runs", run_seeds(args.seed, 300)))}
    many = bound["300 runs"]
    for name, walls in bound.items():
        print(f"simulated, {name}: default thresholds {100 * (1 - walls['threshold'] / walls['off']):.1f} % less, "
              f"an oracle {100 * (1 - walls['oracle'] / walls['off']):.1f} % less")
    common = meta | {"part": "handoff", "tests": args.tests, "runs": args.runs, "workers": workers,
                     "seed": args.seed, "valid": valid}
    figures = {"wall_on_s": round(on, 2), "wall_off_s": round(off, 2),
               "wall_reduction_pct": None if reduction is None else round(reduction, 1),
               "stragglers_copied": sum(r["copied"] for r in arms["on"]),
               "copies_won": sum(r["copy_won"] for r in arms["on"]),
               "simulated_threshold_pct_300": round(100 * (1 - many["threshold"] / many["off"]), 1),
               "simulated_oracle_pct_300": round(100 * (1 - many["oracle"] / many["off"]), 1)}
    return [json.dumps(common | {"figure": name, "value": value}
                       | ({"target": f">= {HANDOFF_TARGET_PCT:.0f}"} if name == "wall_reduction_pct" else {}))
            for name, value in figures.items()]


PARTS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], list[str]]] = {
    "handoff": part_handoff, "replication": part_replication, "helpers": part_helpers,
    "allocation": part_allocation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Issue 20: a collaborating fleet, measured part by part.")
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="run only this part (repeatable)")
    parser.add_argument("--tests", type=int, default=20, help="handoff: tests in the generated suite")
    parser.add_argument("--handoff-workers", type=int, default=4, help="handoff: workers of each run")
    parser.add_argument("--runs", type=int, default=20, help="handoff: run seeds, each run with hand-off on and off")
    parser.add_argument("--cases", type=int, default=8, help="replication: tests per planted class")
    parser.add_argument("--flaky-rate", type=float, default=0.4, help="replication: failure rate of the flaky tests")
    parser.add_argument("--helper-pairs", type=int, default=4, help="helpers: pairs of runs, profiler on and off")
    parser.add_argument("--helper-tests", type=int, default=16, help="helpers: load tests after the spike")
    parser.add_argument("--helper-duration", type=float, default=5.0,
                        help="helpers: seconds the profiler stays attached")
    parser.add_argument("--runs-allocation", dest="alloc_runs", type=int, default=5,
                        help="allocation: seeds, each explored with specialisation on and off")
    parser.add_argument("--explore", type=int, default=150, help="allocation: explored executions per run")
    parser.add_argument("--seed", type=int, default=20261207, help="seed of durations, run seeds, planted randomness")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one testfleet run may take")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)
    meta = context() | {"bench": "collaboration"}
    lines: list[str] = []
    for part in args.part or sorted(PARTS):
        print(f"== {part} ==")
        lines.extend(PARTS[part](args, meta))
    publish(lines, RESULTS, save=not args.no_save)
    return 0 if lines else 1


if __name__ == "__main__":
    sys.exit(main())
