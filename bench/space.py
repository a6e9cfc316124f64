"""Parameter spaces: covering-array sizes and times against allpairspy (measured in this run)
and PICT / best known sizes (published figures), random generation speed, coverage speed.

    python bench/space.py              # everything (a few minutes)
    python bench/space.py --quick      # smaller random/coverage figures, no 3-way
    python bench/space.py --only pairwise --only threeway --only random --only coverage

Prints a table per part and one JSON line per figure (also appended to
bench/results/space.jsonl). Targets are printed, never enforced; exit 1 only when a produced
array fails its own brute-force coverage check or a variant breaks a constraint.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_xdist import context, publish  # noqa: E402

from testfleet.space import Choice, Float, Int, Space  # noqa: E402
from testfleet.space.covering import covering_array  # noqa: E402
from testfleet.space.sampling import random_points  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "space.jsonl"

# model name, levels, best known, PICT (figures from the issue)
PAIRWISE = [
    ("3^4", [3] * 4, 9, 12), ("3^13", [3] * 13, 15, 19), ("2^10", [2] * 10, 6, 8),
    ("2^100", [2] * 100, 10, 16), ("4^10", [4] * 10, 24, 31), ("5^10", [5] * 10, 36, 45),
    ("10^10", [10] * 10, 115, 166), ("10^20", [10] * 20, 155, 213),
    ("4^15 3^17 2^29", [4] * 15 + [3] * 17 + [2] * 29, 29, 38),
    ("4^1 3^39 2^35", [4] + [3] * 39 + [2] * 35, 21, 28),
]
THREEWAY = [("3^13", [3] * 13, 45, 74), ("4^10", [4] * 10, 100, 156),
            ("10^10", [10] * 10, 1215, 2324)]


def covers(levels: list[int], rows: np.ndarray, t: int) -> bool:
    """Independent check: every t-tuple of every t columns appears in some row."""
    for cols in itertools.combinations(range(len(levels)), t):
        sub = rows[:, cols]
        codes = np.zeros(len(rows), dtype=np.int64)
        for j, c in enumerate(cols):
            codes = codes * levels[c] + sub[:, j]
        if len(np.unique(codes)) != int(np.prod([levels[c] for c in cols])):
            return False
    return True


def _allpairs_worker(levels: list[int], t: int, queue: mp.Queue) -> None:
    from allpairspy import AllPairs

    start = time.perf_counter()
    rows = list(AllPairs([list(range(v)) for v in levels], n=t))
    took = time.perf_counter() - start
    complete = covers(levels, np.array([list(r) for r in rows]), t)
    queue.put((len(rows), took, complete))


def allpairspy(levels: list[int], t: int, timeout: float
               ) -> tuple[int | None, float | None, bool | None]:
    """allpairspy's size, time and whether its rows really cover every t-tuple (its n > 2 does
    not always), in a child process so a slow model can be given up."""
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_allpairs_worker, args=(levels, t, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None, None, None
    return queue.get() if not queue.empty() else (None, None, None)


def bench_arrays(models: list, t: int, timeout: float, ctx: dict) -> tuple[list[str], bool]:
    lines, ok = [], True
    print(f"\n{t}-way covering arrays (sizes: smaller is better)")
    print(f"{'model':<16}{'best':>6}{'PICT':>6}{'testfleet':>10}{'s':>7}{'allpairspy':>11}{'s':>7}"
          f"{'tf/best':>8}{'<=PICT':>7}")
    for name, levels, best, pict in models:
        start = time.perf_counter()
        rows = covering_array(levels, t, seed=0)
        took = time.perf_counter() - start
        valid = covers(levels, rows, t)
        ok &= valid
        ap_size, ap_time, ap_complete = allpairspy(levels, t, timeout)
        size = len(rows)
        ap_text = "n/a" if ap_size is None else f"{ap_size}{'' if ap_complete else '*'}"
        print(f"{name:<16}{best:>6}{pict:>6}{size:>10}{took:>7.2f}"
              f"{ap_text:>11}{(f'{ap_time:.2f}' if ap_time is not None else '>' + str(int(timeout))):>7}"
              f"{size / best:>8.2f}{'yes' if size <= pict else 'NO':>7}" + ("" if valid else "  INVALID"))
        lines.append(json.dumps(ctx | {"part": f"{t}-way", "model": name, "testfleet": size,
                                       "testfleet_s": round(took, 3), "allpairspy": ap_size,
                                       "allpairspy_s": None if ap_time is None else round(ap_time, 3),
                                       "allpairspy_complete": ap_complete,
                                       "best_known": best, "pict": pict,
                                       "over_best": round(size / best, 3), "valid": valid}))
    print("* allpairspy's rows miss some required tuples (not a complete covering array)")
    return lines, ok


def twenty_dim_space() -> Space:
    """20 dimensions, 5 constraints: the issue's generation-speed model."""
    dims: dict[str, Any] = {}
    for i in range(8):
        dims[f"i{i}"] = Int(0, 1000)
    for i in range(6):
        dims[f"f{i}"] = Float(0.0, 1.0)
    for i in range(6):
        dims[f"c{i}"] = Choice(["a", "b", "c", "d"])
    constraints = ["i0 <= i1 * 2", "c0 == 'a' -> i2 < 500", "f0 + f1 <= 1.5",
                   "c1 != c2 or i3 > 100", "i4 - i5 < 800"]
    return Space(dims, constraints)


def bench_random_and_coverage(count: int, ctx: dict, parts: set[str]) -> tuple[list[str], bool]:
    from testfleet.analysis.space_coverage import measure_points

    space = twenty_dim_space()
    lines, ok = [], True
    start = time.perf_counter()
    points = random_points(space, count, seed=1).points
    took = time.perf_counter() - start
    per_minute = len(points) / took * 60
    sample = points[:: max(1, len(points) // 2000)]
    valid = all(space.is_valid(p.params) for p in sample)
    ok &= valid
    if "random" in parts:
        print(f"\nrandom generation, 20 dimensions, 5 constraints: {len(points):,} distinct valid "
              f"variants in {took:.2f} s = {per_minute:,.0f} per minute "
              f"(target >= 1,000,000; source document: 1,000) {'' if valid else 'INVALID'}")
        lines.append(json.dumps(ctx | {"part": "random", "variants": len(points),
                                       "seconds": round(took, 3), "per_minute": round(per_minute),
                                       "over_source_document": round(per_minute / 1000, 1),
                                       "valid": valid}))
    if "coverage" in parts:
        params = [p.params for p in points]
        start = time.perf_counter()
        result = measure_points(space, params, 2)
        took = time.perf_counter() - start
        print(f"coverage of {len(params):,} executed variants x 20 dimensions at t = 2: "
              f"{took:.2f} s (target < 5 s; source document: 10,000 in 30 s), simple coverage "
              f"{result.report.simple:.1%}")
        lines.append(json.dumps(ctx | {"part": "coverage", "variants": len(params),
                                       "seconds": round(took, 3),
                                       "simple": round(result.report.simple, 4)}))
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append",
                        choices=["pairwise", "threeway", "random", "coverage"])
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds allpairspy gets per model (default 60)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    parts = set(args.only or ["pairwise", "threeway", "random", "coverage"])
    if args.quick and not args.only:
        parts.discard("threeway")
    ctx = context() | {"bench": "space"}
    lines: list[str] = []
    ok = True
    if "pairwise" in parts:
        more, good = bench_arrays(PAIRWISE, 2, args.timeout, ctx)
        lines += more
        ok &= good
    if "threeway" in parts:
        more, good = bench_arrays(THREEWAY, 3, args.timeout, ctx)
        lines += more
        ok &= good
    if parts & {"random", "coverage"}:
        more, good = bench_random_and_coverage(100_000 if args.quick else 1_000_000, ctx, parts)
        lines += more
        ok &= good
    publish(lines, RESULTS, save=not args.no_save)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
