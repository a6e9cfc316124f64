"""Failure analysis on the zoo, scored on stored explore runs (no exploration rerun per change).

    python bench/zoo/analysis_score.py make --dir D --seeds 1 2 [--system ledger_api ...] [--full]
    python bench/zoo/analysis_score.py score --dir D [--half tuning] [--verbose]

``make`` runs ``--explore`` on each system and seed exactly as ``bench/exploration.py --zoo``
does (``measure.run_explore``: budget 300 a case, one worker, the bench's stop sets) and keeps
each store as ``D/<system>-explore-<seed>.duckdb``. With the stop sets a case's test bodies stop
once it met all its defects, so most defects fail only a few times; ``--full`` runs the whole
budget, as a user's run would. ``score`` reads every such store and scores
analysis with ``measure.analysis_of`` (``scoring.score_analysis``, the only reader of the ground
truth) for each defect the run met, then prints per half: the planted cause ranked first (of the
defects with a parameter cause), a noise parameter significant, an environment factor
significant (targets >= 90 %, <= 5 %, <= 5 %), and with ``--verbose`` one line per analysis.
Tune on the tuning half only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ZOO = Path(__file__).resolve().parent
sys.path.insert(0, str(ZOO))

from measure import analysis_of, run_explore
from scoring import load_truth, stop_sets

from testfleet.errors import StoreError

BUDGET = 300
STORE = re.compile(r"(?P<system>.+)-explore-(?P<seed>\d+)\.duckdb$")


def make(work: Path, seeds: list[int], wanted: list[str] | None, budget: int,
         full: bool = False) -> None:
    systems, defects = load_truth()
    work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for system in systems.values():
            if wanted and system.name not in wanted:
                continue
            if (work / f"{system.name}-explore-{seed}.duckdb").exists():
                continue
            start = time.perf_counter()
            # the bench stops a case's test bodies once it met all its defects; --full runs on,
            # as a user's run would, so analysis sees each defect more than a few times
            stop = {} if full else stop_sets(system, [d for d in defects if d.system == system.name])
            run_explore(system, "explore", seed, budget, work, stop, None)
            print(f"seed {seed} {system.name}: {time.perf_counter() - start:.0f} s", flush=True)


def _everything_as_design() -> None:
    """``--all-design``: analysis as the scorer saw it before it kept origins and variants
    (every execution a design execution, no strata for the environment): for comparison only."""
    from testfleet.analysis import dataset

    load = dataset.load_frame

    def blind(*args, **kwargs):  # type: ignore[no-untyped-def]
        frame = load(*args, **kwargs)
        frame.origins = frame.variant_ids = None
        return frame

    dataset.load_frame = blind


def _keep_analyses() -> list:
    """Every Analysis that ``score_analysis`` computes, in order (it returns only its verdict)."""
    from testfleet.analysis import correlation

    kept: list = []
    analyze = correlation.analyze

    def keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        kept.append(analyze(*args, **kwargs))
        return kept[-1]

    correlation.analyze = keep
    return kept


def _first_suspect(analysis) -> list[str]:  # type: ignore[no-untyped-def]
    """The parameters of the first suspect a reader is shown: the design's first rule, else
    the first hypothesis the guided executions suggest."""
    rule = analysis.rules[0] if analysis.rules else \
        analysis.hypotheses[0].rule if analysis.hypotheses else None
    return [] if rule is None else [c.column for c in rule.conditions]


def score(work: Path, half: str | None, verbose: bool, wanted: list[str] | None) -> None:
    systems, defects = load_truth()
    analyses = _keep_analyses()
    scored: dict[str, list[dict]] = {"tuning": [], "held-out": []}
    for path in sorted(work.glob("*-explore-*.duckdb")):
        match = STORE.match(path.name)
        if not match or match["system"] not in systems:
            continue
        system = systems[match["system"]]
        if (half and system.half != half) or (wanted and system.name not in wanted):
            continue
        mine = [d for d in defects if d.system == system.name]
        if Path(f"{path}.wal").exists():      # still being written by `make`
            print(f"skipped {path.name}: in use", file=sys.stderr)
            continue
        try:
            found = analysis_of(path, system, mine)
        except StoreError:       # still being written by `make`
            print(f"skipped {path.name}: in use", file=sys.stderr)
            continue
        for a, analysis in zip(found, analyses[-len(found):] if found else []):
            scored[system.half].append({"seed": int(match["seed"]), "system": system.name,
                                        "suspect": _first_suspect(analysis), **a})
    for name, rows in scored.items():
        if not rows:
            continue
        ranked = [a for a in rows if a["ranked_first"] is not None]
        first = sum(bool(a["ranked_first"]) for a in ranked)
        noise = sum(bool(a["noise_significant"]) for a in rows)
        env = sum(bool(a["env_significant"]) for a in rows)
        suspected = sum(bool(a["suspect"]) and set(a["suspect"]) <= set(a["cause"])
                        for a in ranked)
        enough = [a for a in ranked if not a["not_enough_data"]]
        print(f"{name:<9} planted cause first {first}/{len(ranked)}; noise significant "
              f"{noise}/{len(rows)}; environment significant {env}/{len(rows)}; first suspect "
              f"(rule, else hypothesis) only planted parameters {suspected}/{len(ranked)}; "
              f"where the design had enough failures: first "
              f"{sum(bool(a['ranked_first']) for a in enough)}/{len(enough)}")
        if verbose:
            for a in rows:
                mark = {True: "FIRST", False: "miss ", None: "  -  "}[a["ranked_first"]]
                print(f"  {mark} s{a['seed']} {a['defect']:<28} {a['failures']:>4}/"
                      f"{a['executions']:<5} top={a['top']} cause={a['cause']} "
                      f"noise={a['noise_significant']} env={a['env_significant']} "
                      f"suspect={a['suspect']}"
                      + (f" ({a['not_enough_data']})" if a["not_enough_data"] else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="run and keep explore runs")
    m.add_argument("--dir", type=Path, required=True)
    m.add_argument("--seeds", type=int, nargs="+", default=[1])
    m.add_argument("--system", nargs="*")
    m.add_argument("--budget", type=int, default=BUDGET)
    m.add_argument("--full", action="store_true",
                   help="no stop sets: every case runs its whole budget")
    s = sub.add_parser("score", help="score analysis on the stored runs")
    s.add_argument("--dir", type=Path, required=True)
    s.add_argument("--half", choices=["tuning", "held-out"])
    s.add_argument("--system", nargs="*")
    s.add_argument("--verbose", action="store_true")
    s.add_argument("--all-design", action="store_true",
                   help="treat every execution as design (the scorer's view before; comparison)")
    args = parser.parse_args()
    if args.command == "make":
        make(args.dir, args.seeds, args.system, args.budget, args.full)
    else:
        if args.all_design:
            _everything_as_design()
        score(args.dir, args.half, args.verbose, args.system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
