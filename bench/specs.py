"""Spec check speed: 1,000,000 stored results, ten specs, from the DuckDB store to verdicts.

    python bench/specs.py            # 1,000,000 results over 20,000 variants
    python bench/specs.py --quick    # 100,000 results

The store is filled with SQL (generate_series; not timed), then the timed part is exactly what
`testfleet spec check` does: load the run's executions as columns, parse each variant's
parameters once, evaluate every spec. Target (issue 5): < 5 s for 1,000,000 results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_xdist import context, publish  # noqa: E402

from testfleet.analysis.spec_results import load_results  # noqa: E402
from testfleet.model import Run  # noqa: E402
from testfleet.specs import check, specs  # noqa: E402
from testfleet.store.db import Store  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "specs.jsonl"

SPECS = specs([
    {"id": "lru-passes", "given": "mode == 'lru'", "then": "passes"},
    {"id": "off-small", "given": "mode == 'off' and threads <= 4", "then": "passes"},
    {"id": "big-payload-fails", "given": "payload > 900000", "then": {"outcome": "fails",
                                                                       "message": "too large"}},
    {"id": "fast", "when": "tests/test_api.py::*", "then": {"max_duration": 0.5}},
    {"id": "orders", "when": {"nodeid": "tests/test_orders.py::*"}, "then": "passes"},
    {"id": "threads", "given": "threads * 2 > 12", "then": {"duration": {"max": 1.0}}},
    {"id": "mixed", "given": "mode != 'lfu' -> threads < 8", "then": "passes"},
    {"id": "none", "given": "threads > 1000", "then": "passes"},
    {"id": "ratio", "given": "ratio < 0.1 and mode in ['off', 'lru']", "then": "passes"},
    {"id": "all", "then": {"duration": {"min": 0}}},
])


def fill(path: Path, results: int, variants: int) -> None:
    with Store.open(path) as store:
        store.begin_run(Run(run_id="bench", started_at=datetime.now(UTC)))
        store.write("bench data", [
            ("INSERT INTO variants SELECT 'v' || i, 'c' || (i % 50), "
             "json_object('mode', ['off', 'lru', 'lfu'][1 + i % 3], 'threads', 1 + i % 12, "
             "'payload', (i * 7919) % 1000000, 'ratio', (i % 100) / 100.0), 'random', NULL "
             f"FROM range({variants}) t(i)", []),
            ("INSERT INTO results (run_id, variant_id, case_id, nodeid, attempt, worker, outcome, "
             "duration, message, longrepr, stdout, stderr, log, categories, file, keywords, "
             "phases, flaky, final) SELECT 'bench', 'v' || (i % $1), 'c' || (i % 50), "
             "CASE WHEN i % 2 = 0 THEN 'tests/test_api.py::test_' || (i % 25) "
             "ELSE 'tests/test_orders.py::test_' || (i % 25) END, 1, 'gw' || (i % 2), "
             "CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'passed' END, (i % 1000) / 1000.0, "
             "CASE WHEN i % 97 = 0 THEN 'payload too large' ELSE '' END, '', '', '', '', '[]', "
             "'', '[]', '{}', false, true FROM range($2) t(i)", [variants, results]),
        ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    results = 100_000 if args.quick else 1_000_000
    variants = results // 50
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        fill(path, results, variants)
        with Store.open(path, read_only=True) as store:
            start = time.perf_counter()
            table = load_results(store, "bench")
            loaded = time.perf_counter() - start
            verdicts = check(SPECS, table)
            took = time.perf_counter() - start
    statuses = {v.spec.id: (v.status, v.matching, v.violations) for v in verdicts}
    print(f"spec check: {len(table):,} results, {variants:,} variants, {len(SPECS)} specs: "
          f"{took:.2f} s (load {loaded:.2f} s, evaluate {took - loaded:.2f} s); target < 5 s")
    for spec_id, (status, matching, violations) in statuses.items():
        print(f"  {spec_id:<18} {status:<9} matching {matching:>9,}  violations {violations:>7,}")
    line = json.dumps(context() | {"bench": "specs", "results": len(table),
                                   "variants": variants, "specs": len(SPECS),
                                   "seconds": round(took, 3), "load_seconds": round(loaded, 3)})
    publish([line], RESULTS, save=not args.no_save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
