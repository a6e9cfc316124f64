#!/usr/bin/env python
"""Resilience under failure injection: the same suite, SUT and faults with circuit breakers and
escalating recovery on and off (issue 19).

    python bench/resilience.py                          # mild, moderate, severe; 4 seeds each
    python bench/resilience.py --only severe --seeds 6 --tests 200
    python bench/resilience.py --no-save --why          # and what the wrongly failed tests said

The suite is generated into a temporary folder: ``--tests`` tests (default 300), each sleeping
``--sleep`` seconds (0.05) then creating and reading back an item of the example inventory
service (examples/inventory/inventory_service.py, one instance per worker, declared in
``[tool.testfleet.sut]``); every 25th test fails on purpose, so a correct verdict is not always
"passed". Each arm runs ``testfleet run --workers 2 --chaos FILE --seed SEED`` with
``[tool.testfleet.breakers] enabled = true`` ("on") or ``false`` ("off": plain crash retry and
worker replacement).

A fair comparison: both arms of a pair get the same faults at the same points of the run. A quiet
run (no --chaos) gives the suite's rate (final results per second); for each profile and seed the
profile's own draw (``testfleet.execution.chaos.profiles``, the faults ``--chaos PROFILE --seed
SEED`` would inject) is turned from times into progress: a fault drawn at ``t`` seconds fires
after ``round(t * rate)`` final results (``after_tests`` in a schedule file; faults past 90 % of
the suite are dropped, so each has time to show its recovery). Targets stay ``any``, picked per
fault by seat (the same seat in both arms while both have it). Each seed is one pair, run back to
back, the arm that goes first alternating from pair to pair.

Figures, per profile and arm, read back from each run's store (medians over the pairs, counts
summed):

  recovery_s     seconds from a fault to its target (the fleet, for a killed worker) being back at
                 80 % of its pre-fault rate (testfleet.analysis.recovery_time), per fault; pairs of
                 the same fault in both arms give the per-fault gain; faults that never recovered
                 before the run ended are counted apart
  success_rate   share of tests whose final verdict equals the quiet run's: neither lost nor
                 wrongly failed by infrastructure
  wrongly_failed tests the quiet run passed that the chaos run did not (or lost)
  cpu_s          user + system CPU of the run's whole process tree (getrusage of the reaped
                 children: the CLI, its zygote, workers and SUT instances)
  wall_s         launch to exit

Gains on/off are printed beside the source document's claims: recovery 30-45 % faster, 25-40 %
fewer tests wrongly failed, 15-20 % less CPU. Recovery and wall time depend on the machine's load
(printed); the counts do not. One JSON line per figure goes to stdout and is appended to
bench/results/resilience.jsonl. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import takewhile
from pathlib import Path
from typing import Any

import yaml
from vs_xdist import context, publish

from testfleet.analysis.recovery_time import load as load_faults
from testfleet.analysis.recovery_time import analyse
from testfleet.execution.chaos.profiles import profile_schedule
from testfleet.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "examples" / "inventory" / "inventory_service.py"
RESULTS = Path(__file__).resolve().parent / "results" / "resilience.jsonl"
PROFILES = ("mild", "moderate", "severe")
CLAIMS = {"recovery": (30, 45), "wrongly_failed": (25, 40), "cpu": (15, 20)}
LAST_FAULT_AT = 0.9  # share of the suite after which no fault is injected

TESTS = """
import time

import httpx
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_item(testfleet_instance, n):
    time.sleep({sleep})
    base = testfleet_instance.base_url
    made = httpx.post(base + "/items", json={{"name": f"item{{n}}", "quantity": n % 7, "price": 1.5}},
                      timeout=10)
    assert made.status_code == 201, made.text
    got = httpx.get(f"{{base}}/items/{{made.json()['id']}}", timeout=10)
    assert got.status_code == 200 and got.json()["quantity"] == n % 7
    assert n % 25 != 7, "fails on purpose: its correct verdict is 'failed'"
"""


def write_suite(folder: Path, tests: int, sleep: float, breakers: bool) -> None:
    command = json.dumps(f"{sys.executable} {SERVICE} --port {{port}}")
    (folder / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n\n"
        "[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
        f"command = {command}\nready = {{http = \"http://127.0.0.1:{{port}}/health\"}}\nstart_timeout = 30.0\n"
        f"\n[tool.testfleet.breakers]\nenabled = {str(breakers).lower()}\n")
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_items.py").write_text(TESTS.format(tests=tests, sleep=sleep))


def fault_list(profile: str, seed: int, rate: float, tests: int) -> list[dict[str, Any]]:
    """The faults ``--chaos PROFILE --seed SEED`` draws, each keyed on progress instead of time."""
    last = int(LAST_FAULT_AT * tests)
    drawn = takewhile(lambda i: round(i.at * rate) <= last, profile_schedule(profile, seed).upcoming())
    return [{"after_tests": max(1, round(i.at * rate)), "fault": i.fault, "target": i.target,
             **({"duration": i.duration} if i.duration else {}), **({"params": i.params} if i.params else {})}
            for i in drawn]


def run_once(folder: Path, store: Path, chaos: Path | None, seed: int, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "testfleet", "run", "--store", str(store), "--seed", str(seed), "-q",
            *(["--chaos", str(chaos)] if chaos else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"code": proc.returncode, "wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout, "stderr": proc.stderr}


def read_run(store: Path) -> dict[str, Any]:
    """The last run's final verdict (and message) per test, its rate, and each fault's recovery in
    injection order (None: not recovered); ``order``: every fault's kind, skipped ones too."""
    db = Store.open(store, read_only=True)
    try:
        run_id = db.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
        rows = db.query("SELECT nodeid, any_value(outcome), any_value(message) FROM results "
                        "WHERE run_id = $1 AND final GROUP BY nodeid", [run_id])
        faults, attempts, end = load_faults(db, run_id)
        opened = db.query("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'breaker' "
                          "AND json_extract_string(data, '$.to') = 'open'", [run_id])[0][0]
    finally:
        db.close()
    order = sorted(faults, key=lambda f: float(f["at"]))
    per_fault = [(str(f["fault"]), impacts[0].recovery if (impacts := analyse([f], attempts, end)) else "skipped")
                 for f in order]
    span = (end or 0.0) - min((a.start for a in attempts), default=end or 0.0)
    return {"finals": {str(n): str(o) for n, o, _ in rows}, "messages": {str(n): str(m or "") for n, _, m in rows},
            "order": per_fault, "faults": [(k, r) for k, r in per_fault if r != "skipped"],
            "skipped": sum(1 for f in faults if f.get("skipped")), "opened": int(opened),
            "rate": len(rows) / span if span > 0 else 0.0}


def figures(quiet: dict[str, str], read: dict[str, Any], ran: dict[str, Any]) -> dict[str, Any]:
    finals = read["finals"]
    recovered = [r for _, r in read["faults"] if r is not None]
    return {"faults": len(read["faults"]), "skipped": read["skipped"], "recovered": len(recovered),
            "breakers_opened": read["opened"],
            "recovery_s": statistics.mean(recovered) if recovered else None,
            "success_rate": sum(1 for n, o in quiet.items() if finals.get(n) == o) / len(quiet),
            "wrongly_failed": sum(1 for n, o in quiet.items() if o == "passed" and finals.get(n) != "passed"),
            "lost": sum(1 for n in quiet if n not in finals), "cpu_s": ran["cpu_s"], "wall_s": ran["wall_s"],
            "exit": ran["code"]}


def gain(on: float | None, off: float | None) -> float | None:
    """How much lower ``on`` is than ``off``, in percent (positive: on is better)."""
    if on is None or off is None or off == 0:
        return None
    return 100.0 * (off - on) / off


def median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def pair_faults(on: list[tuple[str, Any]], off: list[tuple[str, Any]]) -> list[tuple[str, float, float]]:
    """(fault, recovery on, recovery off) of the faults both arms injected and recovered from; the
    arms' fault lists must agree kind by kind (else nothing is paired: the runs diverged)."""
    if [k for k, _ in on] != [k for k, _ in off]:
        return []
    return [(k, a, b) for (k, a), (_, b) in zip(on, off, strict=True)
            if isinstance(a, float | int) and isinstance(b, float | int)]


def why(quiet: dict[str, str], read: dict[str, Any]) -> collections.Counter[str]:
    """The first line of what each wrongly failed test said (lost: 'lost')."""
    tally: collections.Counter[str] = collections.Counter()
    for nodeid, outcome in quiet.items():
        got = read["finals"].get(nodeid)
        if outcome == "passed" and got != "passed":
            text = read["messages"].get(nodeid, "").strip().splitlines()
            tally[f"{got or 'lost'}: {(text[0] if text else '')[:90]}"] += 1
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet under --chaos, breakers on vs off, same faults.")
    parser.add_argument("--only", action="append", choices=PROFILES, help="run only this profile (repeatable)")
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds each test sleeps")
    parser.add_argument("--seed", type=int, default=19, help="the first pair's seed (then +1, +2, ...)")
    parser.add_argument("--seeds", type=int, default=4, help="pairs per profile")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take")
    parser.add_argument("--why", action="store_true", help="tally what the wrongly failed tests said, per arm")
    parser.add_argument("--keep", action="store_true", help="keep the generated suite and stores")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)
    profiles = args.only or list(PROFILES)
    seeds = [args.seed + k for k in range(args.seeds)]
    root = Path(tempfile.mkdtemp(prefix="tf-resilience-"))
    lines: list[str] = []
    meta = context() | {"bench": "resilience", "tests": args.tests, "seeds": seeds, "design": "paired-progress"}
    failed = False
    loads: list[float] = []
    try:
        folders = {}
        for arm in (True, False):
            folders[arm] = root / ("on" if arm else "off")
            folders[arm].mkdir()
            write_suite(folders[arm], args.tests, args.sleep, arm)
        quiet_run = run_once(folders[False], root / "quiet.duckdb", None, args.seed, args.timeout)
        quiet_read = read_run(root / "quiet.duckdb")
        quiet, rate = quiet_read["finals"], quiet_read["rate"]
        print(f"quiet run: {len(quiet)} tests, exit {quiet_run['code']}, wall {quiet_run['wall_s']:.1f}s, "
              f"cpu {quiet_run['cpu_s']:.1f}s, {rate:.1f} tests/s (faults are placed with this rate)")
        lines.append(json.dumps(meta | {"figure": "quiet", "wall_s": round(quiet_run["wall_s"], 2),
                                        "cpu_s": round(quiet_run["cpu_s"], 2), "tests": len(quiet),
                                        "rate": round(rate, 2)}))
        print(f"{'profile':9} {'seed':>4} {'arm':4} {'faults':>6} {'recov s':>8} {'success':>8} {'wrong':>6} "
              f"{'lost':>5} {'cpu s':>7} {'wall s':>7} {'load':>5}")
        for profile in profiles:
            runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            paired: list[tuple[str, float, float]] = []  # (fault, on, off) recovered in both arms
            tallies: dict[bool, collections.Counter[str]] = {True: collections.Counter(), False: collections.Counter()}
            for pair, seed in enumerate(seeds):
                schedule = root / f"{profile}-{seed}.yaml"
                faults = fault_list(profile, seed, rate, len(quiet))
                schedule.write_text(yaml.safe_dump({"faults": faults}, sort_keys=False))
                reads: dict[bool, dict[str, Any]] = {}
                for arm in ((True, False) if pair % 2 == 0 else (False, True)):
                    load = os.getloadavg()[0]
                    loads.append(load)
                    store = root / f"{profile}-{seed}-{'on' if arm else 'off'}.duckdb"
                    ran = run_once(folders[arm], store, schedule, seed, args.timeout)
                    name = "on" if arm else "off"
                    if ran["code"] not in (0, 1, 2):  # 2: interrupted (gave up), its results still count
                        print(f"{profile} {seed} {name}: exit {ran['code']}\n{ran['stdout'][-1500:]}"
                              f"{ran['stderr'][-1500:]}")
                        failed = True
                        continue
                    reads[arm] = read_run(store)
                    f = figures(quiet, reads[arm], ran) | {"seed": seed, "load": round(load, 2)}
                    runs[arm].append(f)
                    tallies[arm] += why(quiet, reads[arm])
                    rec = f"{f['recovery_s']:.2f}" if f["recovery_s"] is not None else "n/a"
                    print(f"{profile:9} {seed:>4} {name:4} {f['faults']:>6} {rec:>8} {f['success_rate']:>8.3f} "
                          f"{f['wrongly_failed']:>6} {f['lost']:>5} {f['cpu_s']:>7.1f} {f['wall_s']:>7.1f} "
                          f"{load:>5.1f}   ({f['recovered']}/{f['faults']} recovered, {f['skipped']} skipped, "
                          f"{f['breakers_opened']} breaker openings)")
                    lines.append(json.dumps(meta | {"figure": "arm", "profile": profile, "breakers": arm}
                                            | {k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}))
                if len(reads) == 2:
                    paired += pair_faults(reads[True]["order"], reads[False]["order"])
            if not runs[True] or not runs[False]:
                print(f"{profile}: gains on/off n/a (a run failed)")
                continue
            summary = summarize(profile, runs, paired)
            for text, record in summary:
                print(text)
                lines.append(json.dumps(meta | record))
            if args.why:
                for arm in (True, False):
                    print(f"  {profile} breakers {'on' if arm else 'off'}: wrongly failed said")
                    for text, count in tallies[arm].most_common(8):
                        print(f"    {count:4} {text}")
    finally:
        if args.keep:
            print(f"suite, schedules and stores kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if loads:
        print(f"load average (1 min) at the runs' starts: median {statistics.median(loads):.1f}, "
              f"range {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    publish(lines, RESULTS, save=not args.no_save)
    return 1 if failed else 0


def summarize(profile: str, runs: dict[bool, list[dict[str, Any]]],
              paired: list[tuple[str, float, float]]) -> list[tuple[str, dict[str, Any]]]:
    """The profile's medians per arm and its gains on/off, as (console line, JSON record)."""
    out: list[tuple[str, dict[str, Any]]] = []
    med = {arm: {k: median([r[k] for r in rs]) for k in ("recovery_s", "success_rate", "cpu_s", "wall_s")}
           for arm, rs in runs.items()}
    total = {arm: {k: sum(r[k] for r in rs) for k in ("faults", "recovered", "wrongly_failed", "lost",
                                                          "breakers_opened")}
             for arm, rs in runs.items()}
    for arm in (True, False):
        m, t = med[arm], total[arm]
        rec = f"{m['recovery_s']:.2f}" if m["recovery_s"] is not None else "n/a"
        out.append((f"  {profile} {'on' if arm else 'off':3} over {len(runs[arm])} runs: median recovery {rec} s, "
                    f"success {m['success_rate']:.4f}, cpu {m['cpu_s']:.1f} s, wall {m['wall_s']:.1f} s; total "
                    f"{t['faults']} faults ({t['recovered']} recovered), {t['wrongly_failed']} wrongly failed, "
                    f"{t['lost']} lost, {t['breakers_opened']} breaker openings",
                    {"figure": "median", "profile": profile, "breakers": arm, "runs": len(runs[arm])}
                    | {k: None if v is None else round(v, 4) for k, v in m.items()} | t))
    per_fault = [g for _, on, off in paired if (g := gain(on, off)) is not None]
    kinds: dict[str, list[float]] = collections.defaultdict(list)
    for kind, on, off in paired:
        kinds[kind].append(off - on)
    gains = {"recovery": gain(med[True]["recovery_s"], med[False]["recovery_s"]),
             "wrongly_failed": gain(total[True]["wrongly_failed"], total[False]["wrongly_failed"]),
             "cpu": gain(med[True]["cpu_s"], med[False]["cpu_s"])}
    for name, value in gains.items():
        low, high = CLAIMS[name]
        shown = f"{value:+.1f} % better" if value is not None else "n/a (0 with breakers off)"
        target = {"recovery": 30, "wrongly_failed": 25}.get(name)
        verdict = "" if target is None or value is None else (" target met" if value >= target else
                                                               f" target ({target} %) missed")
        out.append((f"  {profile} {name}: on vs off {shown} (document claims {low}-{high} %){verdict}",
                    {"figure": f"{name}_gain_pct", "profile": profile, "claimed": [low, high],
                     "value": None if value is None else round(value, 2)}))
    off_by_seed = {r["seed"]: r for r in runs[False]}
    pairs = [(r, off_by_seed[r["seed"]]) for r in runs[True] if r["seed"] in off_by_seed]
    by_pair = {k: median([gain(on[k], off[k]) for on, off in pairs]) for k in ("recovery_s", "cpu_s", "wall_s")}
    shown = ", ".join(f"{k.removesuffix('_s')} {v:+.1f} %" if v is not None else f"{k.removesuffix('_s')} n/a"
                      for k, v in by_pair.items())
    out.append((f"  {profile} paired by seed ({len(pairs)} pairs), median gain on vs off: {shown}",
                {"figure": "paired_gain_pct", "profile": profile, "pairs": len(pairs)}
                | {k: None if v is None else round(v, 2) for k, v in by_pair.items()}))
    if per_fault:
        by_kind = ", ".join(f"{k} {statistics.median(v):+.2f} s (n={len(v)})" for k, v in sorted(kinds.items()))
        out.append((f"  {profile} per fault, recovered in both arms: n={len(per_fault)}, median gain "
                    f"{statistics.median(per_fault):+.1f} %; off-on seconds by fault: {by_kind}",
                    {"figure": "per_fault_recovery_gain_pct", "profile": profile, "pairs": len(per_fault),
                     "value": round(statistics.median(per_fault), 2),
                     "by_fault_s": {k: round(statistics.median(v), 3) for k, v in kinds.items()}}))
    return out


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
