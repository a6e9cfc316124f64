#!/usr/bin/env python
"""A killed coordinator loses nothing; a fleet under worker kills gives the quiet run's outcome.

    python bench/resume_trials.py                     # both parts, ~10 minutes on 2 cores
    python bench/resume_trials.py --only stress       # 1,000 tests, a worker SIGKILLed every 5 s
    python bench/resume_trials.py --only trials --trials 5

Two parts, each on a generated suite whose outcomes are known (a few fail, a few skip), with
the real CLI (``python -m testfleet``) and a real DuckDB store per run:

  stress  1,000 tests sleeping 30 ms, 2 workers. A quiet run, then the same run while one
          worker is SIGKILLed every ``--kill-every`` seconds (5): the worker chosen is one
          running a test for the first time (a test that crashes two workers is, by policy,
          not retried: hitting a retried test again would be the killer's bad luck, not a
          lost result). Figures: kills, counts_match (stressed final counts == quiet ones),
          lost (tests without a final result), duplicated (tests with more than one).
  trials  ``--trials`` (20) times: a run of 200 tests sleeping 20 ms is kill -9'd at a
          random moment (seeded) between its first test and 95% of the quiet run's testing time, then
          ``testfleet run --resume last``. Per trial: the results stored before the resume
          (DuckDB + the replayed journal), lost, duplicated, tests with a result that ran
          again (rerun_after_result), the seconds until every process of the killed run was
          gone, and whether the final counts equal the quiet run's. Figures: trials with zero
          lost and zero duplicated (target: all), worst process lifetime after the kill.

Prints a line per trial and a JSON line per figure (also appended to
bench/results/resume_trials.jsonl unless --no-save). Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "resume_trials.jsonl"
TESTFLEET = [sys.executable, "-m", "testfleet"]

TESTS = '''
import os
import time

import pytest

LOG = os.environ["BENCH_LOG"]


def note(word, request):
    with open(LOG, "a") as log:
        log.write(f"{{word}} {{request.node.nodeid}} {{os.getpid()}}\\n")


@pytest.mark.parametrize("n", range({per_file}))
def test_work(n, request):
    note("start", request)
    time.sleep({sleep})
    note("end", request)
    k = {file} * {per_file} + n
    if k % 97 == 3:
        assert False, "fails on purpose"
    if k % 89 == 7:
        pytest.skip("skips on purpose")
'''


def write_suite(root: Path, tests: int, sleep: float, per_file: int = 50) -> Path:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "tests").mkdir()
    for f in range((tests + per_file - 1) // per_file):
        n = min(per_file, tests - f * per_file)
        (root / "tests" / f"test_w{f:03d}.py").write_text(textwrap.dedent(TESTS).format(file=f, per_file=n,
                                                                                         sleep=sleep))
    return root


def env(log: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}
    return out | {"BENCH_LOG": str(log), "NO_COLOR": "1", "PYTEST_ADDOPTS": "-p no:randomly"}


def lines(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    text = log.read_text()
    return [line.split() for line in text[:text.rfind("\n") + 1].splitlines()]


def store_facts(store: Path) -> dict[str, Any]:
    """From the store (opened for writing: a killed run's journal is replayed first)."""
    from testfleet.store.db import Store

    with Store.open(store) as db:
        run = db.get_run("last")
        final = db.results(run.run_id, final_only=True)
    per_test = Counter(r.nodeid for r in final)
    return {"run": run, "final": final, "per_test": per_test,
            "counts": dict(Counter(r.outcome.value for r in final))}


def start(root: Path, store: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*TESTFLEET, "run", "--store", str(store), "-n", "2", "-q", *extra], cwd=root,
                            env=env(log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def quiet_run(root: Path, name: str) -> tuple[dict[str, Any], float, float]:
    """The run's facts, its wall time, and the seconds from its first test's start to its end."""
    store, log = root / f"{name}.duckdb", root / f"{name}.log"
    began = time.monotonic()
    proc = start(root, store, log)
    first = None
    while proc.poll() is None:
        if first is None and lines(log):
            first = time.monotonic()
        time.sleep(0.01)
    end = time.monotonic()
    return store_facts(store), end - began, end - (first or began)


def first_time_worker(entries: list[list[str]]) -> int | None:
    """A worker pid now running a test that has not run before."""
    starts = Counter(nodeid for word, nodeid, _ in entries if word == "start")
    running: dict[int, str] = {}
    for word, nodeid, pid in entries:
        if word == "start":
            running[int(pid)] = nodeid
        else:
            running.pop(int(pid), None)
    alive = [pid for pid, nodeid in running.items() if starts[nodeid] == 1 and psutil.pid_exists(pid)]
    return alive[0] if alive else None


def stress(root: Path, tests: int, kill_every: float) -> list[dict[str, Any]]:
    suite = write_suite(root / "stress", tests, 0.03)
    quiet, quiet_wall, _ = quiet_run(suite, "quiet")
    print(f"stress: quiet run {quiet['counts']} in {quiet_wall:.1f}s")
    store, log = suite / "stressed.duckdb", suite / "stressed.log"
    began = time.monotonic()
    proc = start(suite, store, log, "--max-worker-restarts", "1000")
    kills, next_kill = 0, began + kill_every
    while proc.poll() is None:
        if time.monotonic() >= next_kill:
            pid = first_time_worker(lines(log))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                kills += 1
                next_kill += kill_every
        time.sleep(0.02)
    wall = time.monotonic() - began
    facts = store_facts(store)
    lost = tests - len(facts["per_test"])
    duplicated = sum(1 for n in facts["per_test"].values() if n > 1)
    match = facts["counts"] == quiet["counts"]
    print(f"stress: {kills} kills in {wall:.1f}s; final {facts['counts']}; lost {lost}, duplicated {duplicated}; "
          f"counts match the quiet run: {match}")
    common = {"part": "stress", "tests": tests, "kill_every_s": kill_every}
    return [common | {"figure": "kills", "value": kills, "unit": "count"},
            common | {"figure": "counts_match", "value": match, "unit": "bool"},
            common | {"figure": "lost", "value": lost, "unit": "tests"},
            common | {"figure": "duplicated", "value": duplicated, "unit": "tests"},
            common | {"figure": "wall_s", "value": round(wall, 2), "unit": "s", "quiet_wall_s": round(quiet_wall, 2)}]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def trial(suite: Path, number: int, rng: random.Random, quiet: dict[str, Any], testing: float,
          tests: int) -> dict[str, Any]:
    """One run kill -9'd at a random moment of its testing (from its first test to 95% of the quiet
    run's testing time), then resumed."""
    store, log = suite / f"trial{number}.duckdb", suite / f"trial{number}.log"
    began = time.monotonic()
    proc = start(suite, store, log)
    while not lines(log) and proc.poll() is None:  # the first test started: the run is recorded
        time.sleep(0.01)
    first = time.monotonic() - began
    kill_at = first + rng.uniform(0.0, 0.95 * testing)
    descendants: list[psutil.Process] = []
    while time.monotonic() - began < kill_at and proc.poll() is None:
        try:
            descendants = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    finished_first = proc.poll() is not None
    if not finished_first:
        try:
            descendants = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    while any(_alive(p) for p in descendants) and time.monotonic() - killed < 30:
        time.sleep(0.02)
    gone = time.monotonic() - killed
    for p in descendants:
        if _alive(p):
            p.kill()
    before = store_facts(store)
    had_result = set(before["per_test"])
    ran_before = Counter(nodeid for word, nodeid, _ in lines(log) if word == "start")
    resumed = subprocess.run([*TESTFLEET, "run", "--resume", "last", "--store", str(store), "-q"], cwd=suite,
                             env=env(log), capture_output=True, text=True, check=False)
    after = store_facts(store)
    ran_after = Counter(nodeid for word, nodeid, _ in lines(log) if word == "start")
    row = {"trial": number, "kill_at_s": round(kill_at, 2), "finished_before_kill": finished_first,
           "stored_before": len(had_result), "resume_exit": resumed.returncode,
           "lost": tests - len(after["per_test"]),
           "duplicated": sum(1 for n in after["per_test"].values() if n > 1),
           "rerun_after_result": sum(1 for n in had_result if ran_after[n] > ran_before[n]),
           "gone_s": round(gone, 2), "counts_match": after["counts"] == quiet["counts"],
           "same_run": after["run"].run_id == before["run"].run_id}
    return row


def trials(root: Path, count: int, tests: int, seed: int) -> list[dict[str, Any]]:
    suite = write_suite(root / "trials", tests, 0.02)
    quiet, quiet_wall, testing = quiet_run(suite, "quiet")
    print(f"trials: quiet run {quiet['counts']} in {quiet_wall:.1f}s, {testing:.1f}s of it from the first test on")
    rng = random.Random(seed)
    rows = []
    for number in range(1, count + 1):
        row = trial(suite, number, rng, quiet, testing, tests)
        rows.append(row)
        print("trial " + " ".join(f"{k}={v}" for k, v in row.items() if k != "trial"), f"#{number}", flush=True)
    clean = sum(1 for r in rows if r["lost"] == 0 and r["duplicated"] == 0 and r["counts_match"] and r["same_run"])
    common = {"part": "trials", "tests": tests, "trials": count, "seed": seed}
    return [common | {"figure": "clean_trials", "value": clean, "unit": f"of {count}",
                      "target": count},
            common | {"figure": "lost_total", "value": sum(r["lost"] for r in rows), "unit": "tests"},
            common | {"figure": "duplicated_total", "value": sum(r["duplicated"] for r in rows), "unit": "tests"},
            common | {"figure": "rerun_after_result_total", "value": sum(r["rerun_after_result"] for r in rows),
                      "unit": "tests"},
            common | {"figure": "max_gone_s", "value": max(r["gone_s"] for r in rows), "unit": "s",
                      "target": 5.0},
            common | {"figure": "mean_stored_before", "value": round(sum(r["stored_before"] for r in rows) / count, 1),
                      "unit": "tests"}]


def context() -> dict[str, Any]:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        sha = None
    return {"bench": "resume_trials", "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_sha": sha, "python": platform.python_version(), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kill -9 + --resume trials, and worker kills under load.")
    parser.add_argument("--only", choices=["stress", "trials"], help="run one part only")
    parser.add_argument("--tests", type=int, default=1000, help="tests of the stress suite (default 1000)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between worker kills (default 5)")
    parser.add_argument("--trials", type=int, default=20, help="kill -9 + resume trials (default 20)")
    parser.add_argument("--trial-tests", type=int, default=200, help="tests of the trials' suite (default 200)")
    parser.add_argument("--seed", type=int, default=19, help="seed of the kill times (default 19)")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS_FILE}")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tf-resume-"))
    figures: list[dict[str, Any]] = []
    if args.only in (None, "stress"):
        figures += stress(root, args.tests, args.kill_every)
    if args.only in (None, "trials"):
        figures += trials(root, args.trials, args.trial_tests, args.seed)
    ctx = context()
    out = [json.dumps(ctx | figure) for figure in figures]
    print()
    print("\n".join(out))
    if not args.no_save:
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS_FILE.open("a") as fh:
            fh.writelines(line + "\n" for line in out)
    missed = [f for f in figures if (f["figure"] in ("lost", "duplicated", "lost_total", "duplicated_total")
                                     and f["value"]) or (f["figure"] == "counts_match" and not f["value"])
              or (f["figure"] == "clean_trials" and f["value"] != f["target"])
              or (f["figure"] == "max_gone_s" and f["value"] > f["target"])]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
