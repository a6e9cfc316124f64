"""``bench/exploration.py --zoo``: executions until each zoo defect is first found, per method,
over seeds, for the tuning half and the held-out half (see bench/README.md, "The zoo").

Methods, all through pytest with the system's own suite and SUT (``[tool.testfleet.sut]``):

- ``explore``: ``testfleet run --workers 1 --explore B*cases --explore-per-case B --seed S`` in
  the system's directory (one store per run); its explored executions (origin neither baseline
  nor minimize) in result order.
- ``explore-notel``: the same with ``--telemetry-interval 0``.
- ``random``: ``random_points(space, B, seed=S)`` of each test's space (with the SUT's config
  space), run by ``zoo_harness`` the way a worker runs a variant.
- ``hypothesis``: one ``@given`` run per test over the same space, ``@seed(S)``, ``max_examples=B``.

Once a case met every defect it can meet, its executions stop (random, hypothesis) or skip the
test body (explore): what comes after enters no figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parent
sys.path.insert(0, str(ZOO))

from scoring import Defect, System, first_finds, load_truth, median_of, score_analysis, stop_sets, summarise  # noqa: E402
from zoo_harness import case_of, markers_in  # noqa: E402

METHODS = ("explore", "random", "hypothesis", "explore-notel")
RUN_TIMEOUT = 1800
SHORT = {"random": "rand", "hypothesis": "hyp", "explore-notel": "notel", "explore": "expl"}


def _log(text: str) -> None:
    print(text, flush=True)


def _env(method: str, seed: int, budget: int, out: Path, stop: dict[str, list[str]]) -> dict[str, str]:
    path = os.pathsep.join([str(ZOO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "ZOO_METHOD": method.removesuffix("-notel"),
            "ZOO_SEED": str(seed), "ZOO_BUDGET": str(budget), "ZOO_OUT": str(out),
            "ZOO_STOP": json.dumps(stop), "TESTFLEET_SEED": str(seed)}


def run_harness(system: System, method: str, seed: int, budget: int, work: Path,
                stop: dict[str, list[str]]) -> list[dict[str, Any]]:
    out = work / f"{system.name}-{method}-{seed}.jsonl"
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "zoo_harness",
                          "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"],
                         cwd=system.path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                         env=_env(method, seed, budget, out, stop))
    if ran.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"{system.name} {method}: pytest exited {ran.returncode}\n{ran.stdout[-3000:]}")
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def run_explore(system: System, method: str, seed: int, budget: int, work: Path,
                stop: dict[str, list[str]], ruleset: str | None) -> tuple[list[dict[str, Any]], Path]:
    store = work / f"{system.name}-{method}-{seed}.duckdb"
    out = work / f"{system.name}-{method}-{seed}.jsonl"
    cmd = [sys.executable, "-m", "testfleet", "run", "--workers", "1", "--explore",
           str(budget * len(system.cases)), "--explore-per-case", str(budget), "--seed", str(seed),
           "--store", str(store), "-q"]
    if method == "explore-notel":
        cmd += ["--telemetry-interval", "0"]
    if ruleset:
        cmd += ["--ruleset", ruleset]
    cmd += ["--", "-p", "zoo_harness", "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"]
    ran = subprocess.run(cmd, cwd=system.path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                         env=_env(method, seed, budget, out, stop))
    if ran.returncode not in (0, 1):
        raise RuntimeError(f"{system.name} {method}: testfleet run exited {ran.returncode}\n"
                           f"{ran.stdout[-3000:]}\n{ran.stderr[-2000:]}")
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        found = db.query("SELECT r.nodeid, r.outcome, r.message, r.longrepr FROM results r "
                         "JOIN variants v USING (variant_id) WHERE r.run_id = $1 AND r.final "
                         "AND v.origin NOT IN ('baseline', 'minimize') ORDER BY r.rowid", [run_id])
    rows = [{"case": case_of(nodeid), "outcome": outcome,
             "markers": markers_in(f"{message}\n{longrepr}") if outcome != "passed" else []}
            for nodeid, outcome, message, longrepr in found]
    return rows, store


def analysis_of(store: Path, system: System, defects: list[Defect]) -> list[dict[str, Any]]:
    """score_analysis for each defect of ``system`` found in the run stored in ``store``."""
    from testfleet.analysis.dataset import _DECIDED, load_frame
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        frame = load_frame(db, [run])
        texts = db.query("SELECT nodeid, message || chr(10) || longrepr FROM results WHERE run_id = $1 "
                         "AND final AND outcome IN (SELECT unnest($2::VARCHAR[])) ORDER BY rowid",
                         [run.run_id, list(_DECIDED)])
    cases = [case_of(n) for n, _ in texts]
    return [score_analysis(frame, cases, [t for _, t in texts], d) for d in defects
            if any(d.marker in (t or "") for _, t in texts)]


def measure(methods: list[str], seeds: list[int], budget: int, systems_wanted: list[str] | None,
            work: Path, ruleset: str | None, analysis: bool, log: Any = _log
            ) -> tuple[dict[str, dict[str, list[int | None]]], list[dict[str, Any]], dict[str, float], list[Defect]]:
    systems, defects = load_truth()
    chosen = [s for s in systems.values() if not systems_wanted or s.name in systems_wanted]
    defects = [d for d in defects if d.system in {s.name for s in chosen}]
    per = {m: {d.id: [] for d in defects} for m in methods}
    walls = dict.fromkeys(methods, 0.0)
    analyses: list[dict[str, Any]] = []
    for seed in seeds:
        for system in chosen:
            mine = [d for d in defects if d.system == system.name]
            stop = stop_sets(system, mine)
            for method in methods:
                start = time.perf_counter()
                if method.startswith("explore"):
                    rows, store = run_explore(system, method, seed, budget, work, stop, ruleset)
                    if analysis and method == "explore":
                        for scored in analysis_of(store, system, mine):
                            analyses.append({"seed": seed, "system": system.name, **scored})
                else:
                    rows = run_harness(system, method, seed, budget, work, stop)
                walls[method] += time.perf_counter() - start
                found = first_finds(rows, mine)
                for d in mine:
                    per[method][d.id].append(found[d.id])
                unexplained = sum(1 for r in rows if r.get("outcome") == "failed" and not r["markers"])
                log(f"seed {seed} {system.name:<13} {method:<14} {time.perf_counter() - start:6.1f}s "
                    f"{len(rows):>4} ex  " + " ".join(f"{d.id}={found[d.id] or '-'}" for d in mine)
                    + (f"  UNEXPLAINED FAILURES {unexplained}" if unexplained else ""))
    return per, analyses, walls, defects


def report(per: dict[str, dict[str, list[int | None]]], defects: list[Defect], budget: int,
           analyses: list[dict[str, Any]], ctx: dict[str, Any]) -> list[str]:
    """Print the tables; the JSON lines to publish."""
    methods = list(per)
    lines: list[str] = []
    for half in ("tuning", "held-out"):
        group = [d for d in defects if d.half == half]
        if not group:
            continue
        print(f"\n== {half} half: executions until first found, median over seeds "
              f"(budget {budget}; '>{budget}' = a miss), found k/n")
        print(f"{'defect':<30}{'class':<8}" + "".join(f"{m:>19}" for m in methods)
              + "".join(f"{methods[0][:2] + '/' + SHORT.get(m, m)[:6]:>11}" for m in methods[1:]))
        for d in group:
            row = f"{d.id:<30}{d.klass:<8}"
            meds = {}
            for m in methods:
                values = per[m][d.id]
                med = meds[m] = median_of(values, budget)
                text = f">{budget}" if med > budget else f"{med:g}"
                row += f"{text + ' ' + str(sum(v is not None for v in values)) + '/' + str(len(values)):>19}"
                lines.append(json.dumps(ctx | {"method": m, "defect": d.id, "class": d.klass, "half": half,
                                               "median": med, "per_seed": values}))
            for m in methods[1:]:  # n/a: neither found it in any seed
                missed = all(v is None for v in per[methods[0]][d.id] + per[m][d.id])
                row += f"{'n/a' if missed else f'{meds[methods[0]] / meds[m]:.2f}':>11}"
            print(row)
    print("\ngeometric mean of median ratios (lower: the first method finds sooner), over the "
          "defects either method found; found_4of5 = defects the first method found in >= 4 seeds")
    for row in summarise(per, defects, budget, base=methods[0]):
        cells = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {'n/a' if v is None else v}"
                          for k, v in row.items() if k not in ("half", "class"))
        print(f"  {row['half']:<9} {row['class']:<8} {cells}")
        lines.append(json.dumps(ctx | {"figure": "geomean", **row}))
    if analyses:
        scored = [a for a in analyses if a["ranked_first"] is not None]
        first = sum(bool(a["ranked_first"]) for a in scored)
        noise = sum(bool(a["noise_significant"]) for a in analyses)
        env = sum(bool(a["env_significant"]) for a in analyses)
        print(f"\nanalysis (per found defect, its executions as the failures): planted cause ranked "
              f"first in {first}/{len(scored)}; a noise parameter significant in {noise}/{len(analyses)}, "
              f"an environment factor in {env}/{len(analyses)} (targets: >= 90 %, <= 5 %, <= 5 %)")
        for a in analyses:
            lines.append(json.dumps(ctx | {"figure": "analysis", **a}))
    return lines
