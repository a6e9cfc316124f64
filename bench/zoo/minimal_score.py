"""How many of the zoo's found defects end 1-minimal (issue 16, part 4), checked by execution.

    python bench/zoo/minimal_score.py --half tuning --seed 1 --budget 100

Per system: one ``testfleet run --workers 1 --explore B*cases --explore-per-case B --seed S``
in its directory (its own store in ``--work``), as ``bench/exploration.py --zoo`` runs explore
but without stopping a finished case (minimisation runs after exploration). Then:

- *found*: a defect whose marker is in an explored execution's failure text;
- *minimised*: a ``minimized`` event of the run whose minimal variant, run again
  (``minimal_check``), still shows the defect's marker;
- *1-minimal*: besides, none of the variants one simplification step from it (see
  ``minimal_check.single_steps``) shows that marker when run.

Prints a line per defect and the totals per half, with the executions spent on minimisation
(from the events) and on the check. Reads the ground truth (scorer's file) only to name the
defects behind markers and halves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parent
sys.path.insert(0, str(ZOO))

from scoring import System, load_truth  # noqa: E402
from zoo_harness import case_of, markers_in  # noqa: E402

TIMEOUT = 3000


def _env(extra: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join([str(ZOO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, **extra}


def explore(system: System, seed: int, budget: int, work: Path) -> Path:
    store = work / f"{system.name}-{seed}.duckdb"
    if store.exists():
        return store  # --work reused: score the stored run again
    cmd = [sys.executable, "-m", "testfleet", "run", "--workers", "1", "--explore",
           str(budget * len(system.cases)), "--explore-per-case", str(budget), "--seed", str(seed),
           "--store", str(store), "-q", "--", "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"]
    ran = subprocess.run(cmd, cwd=system.path, capture_output=True, text=True, timeout=TIMEOUT,
                         env=_env({"TESTFLEET_SEED": str(seed)}))
    if ran.returncode not in (0, 1):
        raise RuntimeError(f"{system.name}: testfleet run exited {ran.returncode}\n{ran.stdout[-3000:]}"
                           f"\n{ran.stderr[-2000:]}")
    return store


def stored(store: Path) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """(marker -> explored executions carrying it, the run's minimized events)."""
    from testfleet.store.db import Store
    from testfleet.store.telemetry import TelemetryStore

    with Store.open(store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        rows = db.query("SELECT r.message, r.longrepr FROM results r JOIN variants v USING (variant_id) "
                        "WHERE r.run_id = $1 AND r.final AND r.outcome <> 'passed' "
                        "AND v.origin NOT IN ('baseline', 'minimize')", [run_id])
        events = TelemetryStore(db).events(run_id, kinds=("minimized",))
    found: dict[str, int] = {}
    for message, longrepr in rows:
        for m in markers_in(f"{message}\n{longrepr}"):
            found[m] = found.get(m, 0) + 1
    return found, events


def check(system: System, events: list[dict[str, Any]], work: Path, seed: int) -> list[dict[str, Any]]:
    """The minimal_check rows of every minimized event (its id = its index)."""
    wanted = [{"id": i, "case": case_of(e["nodeid"]), "minimal": e.get("minimal_params") or {}}
              for i, e in enumerate(events)]
    out = work / f"{system.name}-{seed}-check.jsonl"
    if out.exists():
        out.unlink()
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "-p", "minimal_check", "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"],
                         cwd=system.path, capture_output=True, text=True, timeout=TIMEOUT,
                         env=_env({"MIN_CHECK_IN": json.dumps(wanted), "MIN_CHECK_OUT": str(out)}))
    if ran.returncode not in (0, 1, 5) or (wanted and not out.exists()):
        raise RuntimeError(f"{system.name} check: pytest exited {ran.returncode}\n{ran.stdout[-3000:]}")
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if wanted else []


def score(system: System, defects: list[Any], seed: int, budget: int, work: Path) -> list[dict[str, Any]]:
    store = explore(system, seed, budget, work)
    found, events = stored(store)
    rows = check(system, events, work, seed)
    by_event: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_event.setdefault(row["id"], []).append(row)
    out = []
    for d in defects:
        marker = d.id
        result: dict[str, Any] = {"system": system.name, "defect": d.id, "class": d.klass, "half": d.half,
                                  "found": found.get(marker, 0), "minimised": False, "one_minimal": False}
        for i, event in enumerate(events):
            checked = by_event.get(i, [])
            minimal = next((r for r in checked if r["step"] == "minimal"), None)
            if minimal is None or marker not in minimal["markers"]:
                continue
            still = [r["step"] for r in checked if r["step"] != "minimal" and marker in r["markers"]]
            candidate = {"minimised": True, "one_minimal": not still, "changes": event.get("changes"),
                         "executions": event.get("executions"), "complete": event.get("complete"),
                         "steps_checked": len(checked) - 1, "steps_still_failing": still}
            if not result["minimised"] or (candidate["one_minimal"] and not result["one_minimal"]):
                result.update(candidate)
        out.append(result)
    spent = sum(int(e.get("executions") or 0) for e in events)
    print(f"{system.name}: {len(events)} minimisations, {spent} executions; "
          f"{len(rows)} check executions", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=("tuning", "held-out", "all"), default="tuning")
    ap.add_argument("--system", action="append", help="only these systems")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=int, default=100, help="explored executions per case")
    ap.add_argument("--work", type=Path, help="stores and check output (default: a temp dir); "
                                                 "a store already there is scored again")
    args = ap.parse_args(argv)
    systems, defects = load_truth()
    chosen = [s for s in systems.values() if (args.half == "all" or s.half == args.half)
              and (not args.system or s.name in args.system)]
    work = args.work or Path(tempfile.mkdtemp(prefix="zoo-minimal-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for system in chosen:
        results += score(system, [d for d in defects if d.system == system.name], args.seed, args.budget, work)
    for r in results:
        state = "1-minimal" if r["one_minimal"] else "minimised" if r["minimised"] else \
            "found" if r["found"] else "not found"
        detail = ""
        if r["minimised"]:
            detail = (f" {json.dumps(r['changes'], ensure_ascii=True)[:140]} ({r['executions']} ex"
                      f"{'' if r['complete'] else ', budget spent'}; {r['steps_checked']} steps checked"
                      + (f"; still failing: {r['steps_still_failing']}" if r["steps_still_failing"] else "") + ")")
        print(f"  {r['defect']:<30} {r['class']:<8} {state:<10}{detail}")
    for half in ("tuning", "held-out"):
        group = [r for r in results if r["half"] == half]
        if group:
            found = [r for r in group if r["found"]]
            print(f"{half}: {len(found)}/{len(group)} defects found; minimised "
                  f"{sum(r['minimised'] for r in found)}/{len(found)}; 1-minimal "
                  f"{sum(r['one_minimal'] for r in found)}/{len(found)} (seed {args.seed}, budget {args.budget})")
    (work / "minimal_score.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"details: {work / 'minimal_score.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
