#!/usr/bin/env python
"""Resilience under failure injection: the same suite and SUT under each chaos profile, with
circuit breakers and escalating recovery on and off (issue 19).

    python bench/resilience.py                       # mild, moderate, severe; ~5-10 minutes
    python bench/resilience.py --only severe --tests 200
    python bench/resilience.py --no-save

The suite is generated into a temporary folder: ``--tests`` tests (default 300), each sleeping
``--sleep`` seconds (0.05) then creating and reading back an item of the example inventory
service (examples/inventory/inventory_service.py, one instance per worker, declared in
``[tool.testfleet.sut]``); every 25th test fails on purpose, so a correct verdict is not always
"passed". Each arm runs ``testfleet run --workers 2 --chaos PROFILE --seed SEED`` with
``[tool.testfleet.breakers] enabled = true`` or ``false`` in the settings file. Until the breakers
exist the key is refused (exit 4): the bench then says "breakers: not available", runs the "off"
arm only (today's behaviour) and reports no ratio.

Figures, per profile and arm, read back from each run's store:

  recovery_s     mean seconds from a fault to its target (the fleet, for a killed worker) being
                 back at its pre-fault rate (testfleet.analysis.recovery_time); faults that never
                 recovered before the run ended are counted apart
  success_rate   share of tests whose final verdict equals the quiet run's (no --chaos): neither
                 lost nor wrongly failed by infrastructure
  wrongly_failed tests the quiet run passed that the chaos run did not (or lost)
  cpu_s          user + system CPU of the run's whole process tree (getrusage of the reaped
                 children: the CLI, its zygote, workers and SUT instances)
  wall_s         launch to exit

Ratios on/off are printed beside the source document's claims: recovery 30-45 % faster, 25-40 %
fewer tests wrongly failed, 15-20 % less CPU. One JSON line per figure goes to stdout and is
appended to bench/results/resilience.jsonl. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vs_xdist import context, publish

from testfleet.analysis.recovery_time import fault_impacts
from testfleet.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "examples" / "inventory" / "inventory_service.py"
RESULTS = Path(__file__).resolve().parent / "results" / "resilience.jsonl"
PROFILES = ("mild", "moderate", "severe")
CLAIMS = {"recovery": (30, 45), "wrongly_failed": (25, 40), "cpu": (15, 20)}

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


def write_suite(folder: Path, tests: int, sleep: float, breakers: bool | None) -> None:
    table = "" if breakers is None else f"\n[tool.testfleet.breakers]\nenabled = {str(breakers).lower()}\n"
    command = json.dumps(f"{sys.executable} {SERVICE} --port {{port}}")
    (folder / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n\n"
        "[tool.testfleet]\nworkers = 2\n\n[tool.testfleet.sut]\n"
        f"command = {command}\nready = {{http = \"http://127.0.0.1:{{port}}/health\"}}\nstart_timeout = 30.0\n"
        + table)
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_items.py").write_text(TESTS.format(tests=tests, sleep=sleep))


def run_once(folder: Path, store: Path, chaos: str | None, seed: int, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "testfleet", "run", "--store", str(store), "--seed", str(seed), "-q",
            *(["--chaos", chaos] if chaos else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"code": proc.returncode, "wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout, "stderr": proc.stderr}


def read_run(store: Path) -> tuple[dict[str, str], list[Any]]:
    """The last run's final verdict per test, and its faults' impacts."""
    db = Store.open(store, read_only=True)
    try:
        run_id = db.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
        finals = dict(db.query("SELECT nodeid, any_value(outcome) FROM results WHERE run_id = $1 AND final "
                               "GROUP BY nodeid", [run_id]))
        impacts = fault_impacts(db, run_id)
    finally:
        db.close()
    return {str(k): str(v) for k, v in finals.items()}, impacts


def figures(quiet: dict[str, str], finals: dict[str, str], impacts: list[Any], ran: dict[str, Any]) -> dict[str, Any]:
    correct = sum(1 for nodeid, outcome in quiet.items() if finals.get(nodeid) == outcome)
    wrongly = sum(1 for nodeid, outcome in quiet.items() if outcome == "passed" and finals.get(nodeid) != "passed")
    recovered = [i.recovery for i in impacts if i.recovery is not None]
    return {"faults": len(impacts), "recovered": len(recovered),
            "recovery_s": sum(recovered) / len(recovered) if recovered else None,
            "success_rate": correct / len(quiet) if quiet else None, "wrongly_failed": wrongly,
            "lost": sum(1 for nodeid in quiet if nodeid not in finals),
            "cpu_s": ran["cpu_s"], "wall_s": ran["wall_s"], "exit": ran["code"]}


def gain(on: float | None, off: float | None) -> float | None:
    """How much lower ``on`` is than ``off``, in percent (positive: on is better)."""
    if on is None or off is None or off == 0:
        return None
    return 100.0 * (off - on) / off


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="testfleet under --chaos, breakers on vs off.")
    parser.add_argument("--only", action="append", choices=PROFILES, help="run only this profile (repeatable)")
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds each test sleeps")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take")
    parser.add_argument("--keep", action="store_true", help="keep the generated suite and stores")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)
    profiles = args.only or list(PROFILES)
    root = Path(tempfile.mkdtemp(prefix="tf-resilience-"))
    lines: list[str] = []
    meta = context() | {"bench": "resilience", "tests": args.tests, "seed": args.seed}
    failed = False
    try:
        probe = root / "probe"
        probe.mkdir()
        write_suite(probe, 1, 0.0, True)
        checked = subprocess.run([sys.executable, "-m", "testfleet", "run", "--store", str(probe / "s.duckdb"), "-q"],
                                 cwd=probe, capture_output=True, text=True, timeout=args.timeout, check=False)
        available = not (checked.returncode == 4 and "breakers" in checked.stderr)
        arms = [True, False] if available else [False]
        print("breakers: " + ("available" if available else
                              f"not available ({checked.stderr.strip().splitlines()[-1] if checked.stderr else ''}); "
                              "running breakers off only"))
        folders = {}
        for arm in arms:
            folder = root / ("on" if arm else "off")
            folder.mkdir()
            write_suite(folder, args.tests, args.sleep, arm if available else None)
            folders[arm] = folder
        quiet_run = run_once(folders[False], root / "quiet.duckdb", None, args.seed, args.timeout)
        quiet, _ = read_run(root / "quiet.duckdb")
        print(f"quiet run: {len(quiet)} tests, exit {quiet_run['code']}, wall {quiet_run['wall_s']:.1f}s, "
              f"cpu {quiet_run['cpu_s']:.1f}s")
        lines.append(json.dumps(meta | {"figure": "quiet", "wall_s": round(quiet_run["wall_s"], 2),
                                        "cpu_s": round(quiet_run["cpu_s"], 2), "tests": len(quiet)}))
        header = f"{'profile':9} {'breakers':8} {'faults':>6} {'recov s':>8} {'success':>8} {'wrong':>6} " \
                 f"{'lost':>5} {'cpu s':>7} {'wall s':>7}"
        print(header)
        table: dict[tuple[str, bool], dict[str, Any]] = {}
        for profile in profiles:
            for arm in arms:  # on and off one after the other: the same load hits both
                store = root / f"{profile}-{'on' if arm else 'off'}.duckdb"
                ran = run_once(folders[arm], store, profile, args.seed, args.timeout)
                if ran["code"] not in (0, 1, 2):  # 2: interrupted (gave up), its results still count
                    print(f"{profile} breakers {'on' if arm else 'off'}: exit {ran['code']}\n"
                          f"{ran['stdout'][-1500:]}{ran['stderr'][-1500:]}")
                    failed = True
                    continue
                finals, impacts = read_run(store)
                f = table[profile, arm] = figures(quiet, finals, impacts, ran)
                rec = f"{f['recovery_s']:.2f}" if f["recovery_s"] is not None else "n/a"
                print(f"{profile:9} {'on' if arm else 'off':8} {f['faults']:>6} {rec:>8} "
                      f"{f['success_rate']:>8.3f} {f['wrongly_failed']:>6} {f['lost']:>5} {f['cpu_s']:>7.1f} "
                      f"{f['wall_s']:>7.1f}   ({f['recovered']}/{f['faults']} faults recovered before the end)")
                lines.append(json.dumps(meta | {"figure": "arm", "profile": profile, "breakers": arm}
                                        | {k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}))
            on, off = table.get((profile, True)), table.get((profile, False))
            if on is None or off is None:
                why = "not available" if not available else "a run failed"
                print(f"{profile}: ratios on/off n/a (breakers: {why})")
                continue
            for name, key in (("recovery", "recovery_s"), ("wrongly_failed", "wrongly_failed"), ("cpu", "cpu_s")):
                value = gain(on[key], off[key])
                low, high = CLAIMS[name]
                shown = f"{value:+.1f} % better" if value is not None else "n/a (0 with breakers off)"
                print(f"  {profile} {name}: on vs off {shown} (document claims {low}-{high} %)")
                lines.append(json.dumps(meta | {"figure": f"{name}_gain_pct", "profile": profile,
                                                "value": None if value is None else round(value, 2),
                                                "claimed": [low, high]}))
    finally:
        if args.keep:
            print(f"suite and stores kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    publish(lines, RESULTS, save=not args.no_save)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
