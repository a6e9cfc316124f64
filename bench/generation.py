"""Generated test data (issue 9): the statistical generator's throughput, validity, realism
(per-field PSI against production) and novelty.

    python bench/generation.py             # the example's traffic and a synthetic capture
    python bench/generation.py --quick     # smaller samples
    python bench/generation.py --only example --only synthetic

Captures: ``example`` is the bundled inventory example's traffic sample
(``examples/inventory/traffic/``, read with ``testfleet.generation.traffic.ingest``; skipped
when it is absent); ``synthetic`` a seeded inventory-like capture
(``testfleet.generation.synthetic``, 5,000 requests in sessions). For each capture: learn time;
generation throughput, one core, realistic mode, best of 3 (target >= 10,000 requests/s);
validity of one realistic draw against the inferred schemas before any regeneration (target >=
99%) and of an explore draw; the largest per-field PSI of generated vs production in realistic
mode (target < 0.1) with the field; novelty, the share of generated requests not identical to
any production request (endpoint, path, query, headers kept, body). Prints a table and one JSON
line per figure (also appended to bench/results/generation.jsonl). Targets are printed, never
enforced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http (imported by httpx): bench/ goes last
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

from testfleet.generation.drift import drift
from testfleet.generation.infer import request_document
from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import learn
from testfleet.generation.synthetic import synthetic_capture
from testfleet.generation.validate import validate

sys.path.append(str(BENCH_DIR))
from vs_xdist import context, publish

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "generation.jsonl"
TRAFFIC = ROOT / "examples" / "inventory" / "traffic"


def example_capture() -> list[CapturedRequest] | None:
    files = sorted(p for p in TRAFFIC.glob("*") if p.suffix in (".jsonl", ".har", ".log"))
    if not files:
        return None
    try:
        from testfleet.generation.traffic import ingest
    except ImportError:
        return None
    # one format is enough: the three files are the same sample in three formats
    jsonl = [p for p in files if p.suffix == ".jsonl"] or files[:1]
    return ingest(jsonl).requests


def _key(request: CapturedRequest) -> str:
    return json.dumps([request.endpoint, request.path, request_document(request)], sort_keys=True)


def measure(name: str, capture: list[CapturedRequest], n: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    model = learn(capture)
    learn_s = time.perf_counter() - start
    best = float("inf")
    for rep in range(3):
        start = time.perf_counter()
        generated = model.generate(n, seed=seed + rep)
        best = min(best, time.perf_counter() - start)
    generated = model.generate(n, seed=seed)
    validity = validate(generated, model.schemas).validity_rate
    explore_validity = validate(model.generate(n // 4, seed=seed, mode="explore"), model.schemas).validity_rate
    report = drift(capture, generated)
    top = report.fields[0] if report.fields else None
    seen = {_key(r) for r in capture}
    novelty = sum(_key(r) not in seen for r in generated) / len(generated)
    return {"capture": name, "production_requests": len(capture), "endpoints": len(model.endpoints),
            "skipped": len(model.skipped), "generated": n, "learn_s": round(learn_s, 3),
            "requests_per_s": round(n / best), "validity": round(validity, 5),
            "explore_validity": round(explore_validity, 5), "max_psi": round(report.max_psi, 4),
            "max_psi_field": f"{top.endpoint} {top.field}" if top else None,
            "endpoint_mix_psi": round(report.endpoint_psi, 4),
            "drifting_fields": len(report.drifting_fields), "novelty": round(novelty, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", choices=["example", "synthetic"])
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    parts = args.only or ["example", "synthetic"]
    n = 20_000 if args.quick else 100_000
    ctx = context() | {"bench": "generation"}
    rows = []
    for part in parts:
        capture = example_capture() if part == "example" else \
            synthetic_capture(2000 if args.quick else 5000, seed=args.seed)
        if not capture:
            print(f"{part}: no capture found, skipped")
            continue
        rows.append(measure(part, capture, n, args.seed))
    head = (f"{'capture':<10} {'prod':>6} {'eps':>4} {'learn s':>8} {'req/s':>9} {'valid':>7} "
            f"{'explore':>8} {'max PSI':>8} {'novel':>6}  field with max PSI")
    print(head)
    for r in rows:
        print(f"{r['capture']:<10} {r['production_requests']:>6} {r['endpoints']:>4} {r['learn_s']:>8.2f} "
              f"{r['requests_per_s']:>9,} {r['validity']:>7.2%} {r['explore_validity']:>8.2%} "
              f"{r['max_psi']:>8.3f} {r['novelty']:>6.1%}  {r['max_psi_field']}")
    print("targets: req/s >= 10,000; valid >= 99%; max PSI < 0.1 (realistic mode)")
    lines = []
    for r in rows:
        for figure in ("requests_per_s", "validity", "explore_validity", "max_psi", "novelty", "learn_s"):
            lines.append(json.dumps({**ctx, "capture": r["capture"], "figure": figure, "value": r[figure],
                                     "production_requests": r["production_requests"],
                                     "generated": r["generated"],
                                     **({"field": r["max_psi_field"]} if figure == "max_psi" else {})}))
    publish(lines, RESULTS, save=not args.no_save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
