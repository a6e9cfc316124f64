"""Exploration effectiveness: executions until each planted defect of the inventory example is
first found, for ``testfleet run --explore`` with the example's ruleset, uniform random sampling
of the same space and a Hypothesis ``@given`` test over it, median over seeds.

    python bench/exploration.py                      # 10 seeds, budget 200 (several minutes)
    python bench/exploration.py --quick              # 5 seeds, budget 100
    python bench/exploration.py --seeds 10 --budget 200 --only explore --telemetry-interval 0.02
    python bench/exploration.py --zoo                # the zoo: 8 systems, 39 defects, 5 seeds, budget 300
    python bench/exploration.py --zoo --quick        # 1 seed, budget 60
    python bench/exploration.py --zoo --seeds 1 --system ledger_api --method explore --method random
    python bench/exploration.py --zoo --seeds 3 --jobs 2     # three seeds, two runs at a time
    python bench/exploration.py --zoo --work /tmp/zoo --tabulate   # the tables of what is there

``--zoo`` measures the systems of ``bench/zoo`` instead (see ``bench/zoo/measure.py`` and
bench/README.md, "The zoo"): four methods, tables per half, geometric-mean ratios overall and
per defect class, found-in-k-of-n, and a score of failure analysis on the explore runs.

The space and the oracle are those of ``bench/exploration_suite/tests/test_defects.py``; the
service is ``examples/inventory/inventory_service.py`` with its planted defects on. Every method
executes the same oracle (:func:`exercise`) against a real service process with real CPU load:

- explore: ``testfleet run --workers 1 --explore BUDGET --seed S --ruleset
  examples/inventory/rules.yaml`` in the suite's directory, one store per seed; the explored
  executions (origin neither baseline nor minimize) in result order, and the first failing one
  whose message names the defect. Once all three defects were met the test returns at once
  (``EXPLORATION_BENCH_STOP``), so the rest of the budget costs little and counts for nothing.
- random: ``random_points(space, BUDGET, seed=S)`` (testfleet's own uniform sampler) in order,
  each run by this process against one service started with ``--defects``.
- hypothesis: one ``@given`` run per defect (Hypothesis stops at its first failure), strategies
  mirroring the dimensions, ``@seed(S)``, ``max_examples=BUDGET``, default phases, no database,
  no deadline; calls counted until the first failure that names the defect (after it the
  property fails at once without a request, so shrinking costs nothing and is not counted).

A method that does not find a defect within the budget counts as ``>BUDGET`` ("not found in N");
the median is then a lower bound when more than half the seeds missed, shown as ``>N``. Prints a
table, one JSON line per figure (also appended to bench/results/exploration.jsonl). Targets are
printed, never enforced.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/ holds http.py, which would shadow the standard library's http (httpx needs it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from testfleet.space.sampling import random_points

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SUITE = BENCH / "exploration_suite"
SERVICE = ROOT / "examples" / "inventory" / "inventory_service.py"
RULESET = ROOT / "examples" / "inventory" / "rules.yaml"
RESULTS = BENCH / "results" / "exploration.jsonl"
RESULTS_ZOO = BENCH / "results" / "exploration_zoo.jsonl"
METHODS = ("explore", "random", "hypothesis")


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


from testfleet.explorable import space_of

SUITE_MODULE = _load("exploration_suite_defects", SUITE / "tests" / "test_defects.py")  # imports httpx
_VS_XDIST = _load("vs_xdist", BENCH / "vs_xdist.py")
context, publish = _VS_XDIST.context, _VS_XDIST.publish
DEFECTS: tuple[str, ...] = SUITE_MODULE.DEFECTS
exercise = SUITE_MODULE.exercise
SPACE = space_of(SUITE_MODULE.test_inventory_defects)


class Service:
    """The inventory service with its defects on, on a free port of 127.0.0.1."""

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, str(SERVICE), "--host", "127.0.0.1", "--port", "0",
                                      "--defects"], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- the three methods: {defect: executions until first found, or None} -----------------------
def run_explore(seed: int, budget: int, interval: float | None, work: Path) -> dict[str, int | None]:
    store = work / f"explore-{seed}.duckdb"
    stop = work / f"stop-{seed}.txt"
    cmd = [sys.executable, "-m", "testfleet", "run", "--workers", "1", "--explore", str(budget),
           "--seed", str(seed), "--ruleset", str(RULESET), "--store", str(store), "-q"]
    if interval is not None:
        cmd += ["--telemetry-interval", str(interval)]
    ran = subprocess.run(cmd, check=False, cwd=SUITE, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "EXPLORATION_BENCH_STOP": str(stop)})
    if ran.returncode not in (0, 1):
        raise RuntimeError(f"testfleet run exited {ran.returncode}:\n{ran.stdout[-2000:]}\n{ran.stderr[-2000:]}")
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        rows = db.query("SELECT r.outcome, r.message, v.origin FROM results r JOIN variants v USING (variant_id) "
                        "WHERE r.run_id = $1 AND r.final AND v.origin NOT IN ('baseline', 'minimize') "
                        "ORDER BY r.rowid", [run_id])
    found: dict[str, int | None] = dict.fromkeys(DEFECTS)
    for index, (outcome, message, origin) in enumerate(rows, start=1):
        if outcome != "failed":
            continue
        for defect in DEFECTS:
            if found[defect] is None and f"defect:{defect}" in (message or ""):
                found[defect] = index
                FOUND_BY.setdefault(defect, []).append(origin)
    return found


#: which source proposed explore's first failing execution of each defect, one entry per seed
FOUND_BY: dict[str, list[str]] = {}


def run_random(seed: int, budget: int, url: str) -> dict[str, int | None]:
    found: dict[str, int | None] = dict.fromkeys(DEFECTS)
    for index, point in enumerate(random_points(SPACE, budget, seed).points, start=1):
        for defect in exercise(url, **point.params):
            if found[defect] is None:
                found[defect] = index
        if all(v is not None for v in found.values()):
            break
    return found


def run_hypothesis(seed: int, budget: int, url: str) -> dict[str, int | None]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    from hypothesis.errors import HypothesisException

    ops = list(SPACE.dimensions["order"].to_dict()["items"])
    found: dict[str, int | None] = dict.fromkeys(DEFECTS)

    def search(defect: str) -> None:
        calls = 0

        @settings(max_examples=budget, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @hseed(seed)
        @given(payload_size=st.integers(0, 1000), order=st.permutations(ops),
               cache=st.sampled_from(["off", "lru", "lfu"]), threads=st.integers(1, 16),
               load=st.integers(0, 100))
        def prop(payload_size: int, order: list[str], cache: str, threads: int, load: int) -> None:
            nonlocal calls
            if found[defect] is not None:  # shrinking: fail at once, not counted
                raise AssertionError(defect)
            calls += 1
            if defect in exercise(url, payload_size, order, cache, threads, load):
                found[defect] = calls
                raise AssertionError(defect)

        try:
            prop()
        except (AssertionError, HypothesisException, ExceptionGroup):  # the (shrunk) failure,
            pass  # or FlakyFailure when the first failure was CPU-dependent and did not replay

    for defect in DEFECTS:
        search(defect)
    return found


# -- figures -----------------------------------------------------------------------------------
def median_text(values: list[int | None], budget: int) -> tuple[float | None, str]:
    """The median with misses as budget + 1; ``>N`` when the median itself is a miss."""
    filled = [budget + 1 if v is None else v for v in values]
    med = statistics.median(filled)
    if med > budget:
        return None, f">{budget}"
    return med, f"{med:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Executions until each planted defect is found.")
    parser.add_argument("--seeds", type=int, default=None, help="default 10 (--zoo: 5)")
    parser.add_argument("--budget", type=int, default=None,
                        help="executions per explorable test (default 200; --zoo: 300)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 seeds, budget 100 (--zoo: 1 seed, budget 60)")
    parser.add_argument("--zoo", action="store_true", help="measure the zoo of bench/zoo instead")
    parser.add_argument("--method", action="append", default=None,
                        help="--zoo: explore, random, hypothesis, explore-notel (the default four), "
                        "explore-nospec (explore with specialisation off)")
    parser.add_argument("--system", action="append", default=None, help="--zoo: only these systems")
    parser.add_argument("--ruleset", default=None, help="--zoo: passed to every explore run")
    parser.add_argument("--no-analysis", action="store_true",
                        help="--zoo: do not score failure analysis on the explore runs")
    parser.add_argument("--jobs", type=int, default=1,
                        help="--zoo: (seed, system, method) runs at once (figures do not depend on it)")
    parser.add_argument("--work", default=None,
                        help="--zoo: keep every run's store, output and result here; a run whose "
                             "result is already there (same budget, timeout, ruleset) is not run again")
    parser.add_argument("--tabulate", action="store_true",
                        help="--zoo: with --work, print the tables from the results there, run nothing")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="--zoo: seconds one execution may run before it is stopped and counts "
                             "as finding nothing (default 20)")
    parser.add_argument("--only", action="append", choices=METHODS)
    parser.add_argument("--telemetry-interval", type=float, default=None,
                        help="passed to testfleet run (default: testfleet's own, 0.1 s)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.zoo:
        return zoo_main(args)
    args.seeds, args.budget = args.seeds or 10, args.budget or 200
    if args.quick:
        args.seeds, args.budget = min(args.seeds, 5), min(args.budget, 100)
    methods = [m for m in METHODS if not args.only or m in args.only]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    ctx = context() | {"bench": "exploration", "budget": args.budget, "seeds": seeds,
                       "telemetry_interval": args.telemetry_interval}
    per: dict[str, dict[str, list[int | None]]] = {m: {d: [] for d in DEFECTS} for m in methods}
    walls: dict[str, float] = dict.fromkeys(methods, 0.0)
    with tempfile.TemporaryDirectory(prefix="tf-explore-") as tmp, Service() as url:
        for seed in seeds:
            for method in methods:
                start = time.perf_counter()
                if method == "explore":
                    found = run_explore(seed, args.budget, args.telemetry_interval, Path(tmp))
                elif method == "random":
                    found = run_random(seed, args.budget, url)
                else:
                    found = run_hypothesis(seed, args.budget, url)
                walls[method] += time.perf_counter() - start
                for defect in DEFECTS:
                    per[method][defect].append(found[defect])
                print(f"seed {seed:>3} {method:<10} " + "  ".join(
                    f"{d}={'-' if found[d] is None else found[d]}" for d in DEFECTS), flush=True)

    lines: list[str] = []
    print(f"\nexecutions until first found, median of {len(seeds)} seeds (budget {args.budget}; "
          f"'-' = not found in {args.budget})")
    print(f"{'defect':<20}" + "".join(f"{m:>14}{'found':>7}" for m in methods)
          + f"{'random/explore':>16}{'hyp/explore':>13}")
    for defect in DEFECTS:
        row = f"{defect:<20}"
        medians: dict[str, float | None] = {}
        for method in methods:
            values = per[method][defect]
            med, text = median_text(values, args.budget)
            medians[method] = med
            hits = sum(v is not None for v in values)
            row += f"{text:>14}{f'{hits}/{len(values)}':>7}"
            lines.append(json.dumps(ctx | {"method": method, "defect": defect, "median": med,
                                           "median_text": text, "found": hits, "runs": len(values),
                                           "per_seed": values}))

        def ratio(peer: str, medians: dict[str, float | None] = medians) -> str:
            a, b = medians.get(peer, "n/a"), medians.get("explore", "n/a")
            if a == "n/a" or b == "n/a" or b is None:
                return "n/a"
            return f">{(args.budget + 1) / b:.1f}" if a is None else f"{a / b:.1f}"

        row += f"{ratio('random'):>16}{ratio('hypothesis'):>13}"
        lines.append(json.dumps(ctx | {"figure": "ratios", "defect": defect,
                                       "random_over_explore": ratio("random"),
                                       "hypothesis_over_explore": ratio("hypothesis")}))
        print(row)
    print("targets: random/explore >= 5 on payload-under-load; explore never worse than "
          "Hypothesis (hyp/explore >= 1) on order and config-pair")
    for defect, origins in FOUND_BY.items():
        counts = {o: origins.count(o) for o in sorted(set(origins), key=lambda o: -origins.count(o))}
        print(f"explore found {defect} first through: " + ", ".join(f"{o} {n}" for o, n in counts.items()))
        lines.append(json.dumps(ctx | {"figure": "found_by", "defect": defect, "origins": counts}))
    print("wall seconds: " + ", ".join(f"{m} {walls[m]:.0f}" for m in methods))
    lines.append(json.dumps(ctx | {"figure": "wall_s", **{m: round(walls[m], 1) for m in methods}}))
    publish(lines, RESULTS, save=not args.no_save)
    return 0


def zoo_main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(BENCH / "zoo"))
    from measure import METHODS as ZOO_METHODS
    from measure import measure
    from zoo_report import report

    seeds_n, budget = args.seeds or 5, args.budget or 300
    if args.quick:
        seeds_n, budget = min(seeds_n, 1), min(budget, 60)
    unknown = [m for m in args.method or () if m not in ZOO_METHODS]
    if unknown:
        print(f"--method: unknown {', '.join(unknown)} (expected one of {', '.join(ZOO_METHODS)})")
        return 2
    methods = [m for m in ZOO_METHODS if m in (args.method or ZOO_METHODS[:4])]  # explore first: the base
    seeds = list(range(args.first_seed, args.first_seed + seeds_n))
    ctx = context() | {"bench": "exploration-zoo", "budget": budget, "seeds": seeds, "methods": methods,
                       "ruleset": args.ruleset, "timeout": args.timeout}
    start = time.perf_counter()
    if args.tabulate and not args.work:
        print("--tabulate needs --work DIR")
        return 2
    with tempfile.TemporaryDirectory(prefix="tf-zoo-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        per, analyses, spent, defects = measure(methods, seeds, budget, args.system, work.resolve(),
                                                args.ruleset, not args.no_analysis, jobs=args.jobs,
                                                timeout=args.timeout, run=not args.tabulate)
    lines = report(per, defects, budget, analyses, ctx)
    wall = time.perf_counter() - start
    print("\nseconds per method, summed over its runs (wall / CPU of the run's processes): "
          + ", ".join(f"{m} {spent[m]['wall_s']:.0f} / {spent[m]['cpu_s']:.0f}" for m in methods)
          + (f"; tabulated from {args.work}" if args.tabulate else f"; total wall {wall:.0f} with --jobs {args.jobs}"))
    lines.append(json.dumps(ctx | {"figure": "seconds", "total_wall": round(wall, 1), "jobs": args.jobs,
                                   **{m: {k: round(v, 1) for k, v in spent[m].items()} for m in methods}}))
    if not args.no_save:
        RESULTS_ZOO.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS_ZOO.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)
        print(f"figures appended to {RESULTS_ZOO.relative_to(ROOT)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
