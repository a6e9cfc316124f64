"""The llm generator with the tiny model made from scratch: time to train, generation speed,
validity (parseable, and valid against the request schemas inferred from the same traffic).

    python bench/llm_generation.py                       # 300 requests, 300 steps, 200 generated
    python bench/llm_generation.py --steps 100 --n 100   # quicker
    python bench/llm_generation.py --traffic capture.har --device cuda

The traffic is the bundled example's (``synthetic_capture``: the inventory service's API), or
the files given with ``--traffic`` (any format ``testfleet.generation.traffic.ingest`` reads).
Needs the ``llm`` extra (torch, transformers, peft). Prints a table and one JSON line per
figure (also appended to bench/results/llm_generation.jsonl). Targets: none in the issue;
figures are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http (torch and httpx import http.client):
# import the real one before the bench folder goes on the path
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH]
import http.client  # noqa: F401

sys.path.insert(0, _BENCH)
from vs_xdist import context, publish

from testfleet.generation.infer import infer_endpoint_schemas, request_document
from testfleet.generation.llm import LLMGenerator
from testfleet.generation.records import CapturedRequest
from testfleet.generation.synthetic import synthetic_capture

RESULTS = Path(__file__).resolve().parent / "results" / "llm_generation.jsonl"


def schema_validator(traffic: list[CapturedRequest]):
    """A validation callable: the request's document against its endpoint's inferred schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validators = {ep: Draft202012Validator(s.json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
                  for ep, s in infer_endpoint_schemas(traffic).items()}

    def check(req: CapturedRequest) -> str | None:
        validator = validators.get(req.endpoint)
        if validator is None:
            return f"no such endpoint: {req.endpoint}"
        error = best_match(validator.iter_errors(request_document(req)))
        return None if error is None else f"{error.json_path}: {error.message}"

    return check


def load_traffic(args: argparse.Namespace) -> list[CapturedRequest]:
    if not args.traffic:
        return synthetic_capture(args.requests, seed=args.seed)[:args.requests]
    from testfleet.generation.traffic import ingest

    return ingest(args.traffic).requests[:args.requests]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="training requests (default 300)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps, batch 16 (default 300)")
    parser.add_argument("--n", type=int, default=200, help="requests to generate (default 200)")
    parser.add_argument("--lr", type=float, default=6e-3)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when present)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--traffic", nargs="*", help="capture files instead of the bundled example's")
    parser.add_argument("--no-save", action="store_true", help="print only, append nothing")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    traffic = load_traffic(args)
    check = schema_validator(traffic)
    base = {**context(), "bench": "llm_generation", "model": "tiny-gpt2-scratch",
            "requests": len(traffic), "torch": torch.__version__, "threads": torch.get_num_threads()}
    lines: list[str] = []

    def figure(name: str, value: Any, **extra: Any) -> None:
        lines.append(json.dumps({**base, "figure": name, "value": value, **extra}))

    with tempfile.TemporaryDirectory() as tmp:
        gen = LLMGenerator()
        report = gen.train(traffic, base_model=None, out_dir=Path(tmp) / "model", epochs=1, lr=args.lr,
                           lora_r=args.lora_r, seed=args.seed, device=args.device, max_steps=args.steps)
        per_step = report.seconds / report.steps
        figure("train_seconds", report.seconds, steps=report.steps, epochs=report.epochs,
               batch_size=report.batch_size, device=report.device, first_loss=report.first_loss,
               final_loss=report.final_loss, trainable_params=report.trainable_params,
               total_params=report.total_params)
        figure("train_ms_per_step", round(per_step * 1000, 1), device=report.device)

        started = time.perf_counter()
        parsed_only = gen.generate(args.n, seed=args.seed + 1, retries=0)  # no validator: parse rate
        first = gen.generate(args.n, seed=args.seed + 2, validate=check, retries=0)
        final = gen.generate(args.n, seed=args.seed + 3, validate=check, retries=3)
        total = time.perf_counter() - started
        figure("generated_lines_per_second", round(parsed_only.drawn / parsed_only.seconds, 1),
               device=report.device, n=args.n)
        figure("parse_rate", round(parsed_only.parse_rate, 4), n=parsed_only.drawn)
        figure("validity_rate", round(first.validity_rate, 4), n=first.drawn,
               note="parseable and valid against the inferred schemas, first draw")
        figure("valid_requests_per_second", round(len(final.requests) / final.seconds, 1),
               produced=len(final.requests), requested=args.n, drawn=final.drawn, rounds=final.rounds)
        reasons: dict[str, int] = {}
        for rej in first.rejected:
            key = rej.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1

    print(f"\nllm generator, tiny model from scratch, {len(traffic)} requests, device {report.device}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"  train     {report.steps} steps in {report.seconds:.1f}s ({per_step * 1000:.0f} ms/step), "
          f"loss {report.first_loss:.2f} -> {report.final_loss:.2f}")
    print(f"  generate  {parsed_only.drawn / parsed_only.seconds:.0f} lines/s; parse rate "
          f"{parsed_only.parse_rate:.1%}; validity (schema) {first.validity_rate:.1%}")
    print(f"  retries=3 {len(final.requests)}/{args.n} valid in {final.rounds} rounds, "
          f"{len(final.requests) / final.seconds:.0f} valid requests/s (all three runs {total:.1f}s)")
    print("  first-draw rejections: " + ", ".join(f"{k} ({v})" for k, v in
                                                   sorted(reasons.items(), key=lambda kv: -kv[1])[:6]))
    publish(lines, RESULTS, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
