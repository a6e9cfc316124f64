"""``testfleet generate learn|sample|plan|drift|retrain``: test data learned from production traffic.

* ``learn TRAFFIC... -o MODEL`` ingests captures (HAR, JSON Lines, access logs; secrets redacted)
  and learns a model per endpoint: ``statistical`` (a JSON file) or ``llm`` (a directory: a
  causal LM fine-tuned with LoRA, ``pip install testfleet[llm]``).
* ``sample MODEL -n N`` prints generated requests as JSON lines, with the validity rate.
* ``plan --traffic ... --model MODEL --dynamic 30% --count N -o DIR`` writes scenario files that
  mix production, generated and mutated production requests (``--target-coverage`` gives rare
  endpoints more of the generated share; ``--openai URL --openai-model NAME`` generates through
  any OpenAI-compatible endpoint instead of a model file).
* ``drift MODEL --against TRAFFIC...`` compares a new capture with what the model learned from
  (and with what the model generates); exit 1 past ``--threshold``; ``--retrain`` learns again.
* ``retrain MODEL --plan DIR [--run RUN|last]`` feeds back the plan's failing generated requests:
  their endpoints and values are weighted up for the statistical model (kept beside it in
  ``MODEL.feedback.json`` and used by later plans), the llm model is fine-tuned on them.

Exit codes: 0 done, 1 drift over the threshold, 2 bad input.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from testfleet.errors import TestfleetError
from testfleet.reporting.consoles import make_console
from testfleet.settings import MAX_SEED

MAX_COUNT = 10_000_000
"""The most requests one command generates (each is held in memory)."""

app = typer.Typer(help="Test data learned from production traffic: learn, sample, plan, drift, retrain.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2
DRIFTING = 1
console = make_console(soft_wrap=True)
notes = make_console(soft_wrap=True, stderr=True)  # beside JSON lines on stdout


def _fail(exc: Exception) -> typer.Exit:
    sys.stderr.write(f"ERROR: {exc}\n")
    return typer.Exit(BAD_INPUT)


def _ingest(paths: list[str], redact: list[str] | None) -> Any:
    from testfleet.generation.traffic import ingest

    report = ingest(paths, redact=redact or ())
    for file, line, reason in report.malformed[:10]:
        console.print(f"[yellow]skipped[/yellow] {escape(file)}:{line}: {escape(reason)}")
    if len(report.malformed) > 10:
        console.print(f"[yellow]... {len(report.malformed) - 10} more malformed lines[/yellow]")
    console.print(f"ingested {len(report.requests)} requests from {len(report.files)} file(s); "
                  f"{len(report.malformed)} malformed, {report.redacted} values redacted")
    return report


def _is_llm(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file()


def _feedback_path(model: Path) -> Path:
    return model.with_name(model.name + ".feedback.json")


def _feedback(model: Path) -> dict[Any, float]:
    path = _feedback_path(model)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    out: dict[Any, float] = dict(data.get("endpoints", {}))
    for entry in data.get("values", []):
        out[(entry["endpoint"], entry["field"], entry["value"])] = float(entry["weight"])
    return out


@app.command("learn")
def learn_cmd(
    traffic: Annotated[list[str], typer.Argument(help="Captures: HAR, JSON Lines, nginx/Apache access logs.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Where the model goes (a file; a directory for llm).")],
    generator: Annotated[str, typer.Option("--generator", help="statistical (default), llm or a plugin's "
                                                              "(`testfleet plugins`).")] = "statistical",
    min_samples: Annotated[int, typer.Option(
        "--min-samples", help="Endpoints with fewer samples are not modelled.")] = 5,
    redact: Annotated[list[str] | None, typer.Option(
        "--redact", help="More fields to redact (name or dotted path; repeatable).")] = None,
    base_model: Annotated[str | None, typer.Option(
        "--base-model", help="llm: a local model path or name (default: a tiny model trained from scratch).")] = None,
    epochs: Annotated[int, typer.Option(
        "--epochs", help="llm: passes over the traffic (about 300 steps for the example).")] = 15,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED)] = 0,
) -> None:
    """Learn a generative model of requests, per endpoint, from captured traffic."""
    from testfleet.atomic import check_output
    from testfleet.plugins import registry

    try:
        generators = registry().generators()  # statistical, llm and the plugins' generators
        if generator not in generators:
            raise typer.BadParameter(" | ".join(generators), param_hint="'--generator'")
        spec = generators[generator]
        check_output(out, "--out", folder=spec.folder)
        report = _ingest(traffic, redact)
        options = {"min_samples": min_samples, "base_model": base_model, "epochs": epochs, "seed": seed}
        for line in spec.learn(report.requests, out, options):
            console.print(escape(line))
    except (TestfleetError, ImportError) as exc:
        raise _fail(exc) from None


def _validator(schemas: Any, production: list[Any]) -> Any:
    """A request -> reason-or-None check against ``schemas`` (or what ``production`` implies)."""
    from testfleet.generation.infer import infer_endpoint_schemas
    from testfleet.generation.validate import RequestChecker

    # what production implies, with the schemas the user gave taking precedence
    checker = RequestChecker({**infer_endpoint_schemas(production), **(schemas or {})})

    def check(request: Any) -> str | None:
        found = checker.check(0, request)
        return None if found.valid else f"{found.error} at {found.path}"

    return check


def _generator(model: str | None, openai: str | None, openai_model: str | None, mode: str) -> Any:
    """A function (n, weights, seed, schemas, production) -> a result with ``requests`` and
    ``validity_rate``, for the model asked for."""
    if openai:
        from testfleet.generation.openai_gen import OpenAIGenerator

        client = OpenAIGenerator(openai, openai_model or "default")

        def ask(n: int, weights: Any, seed: int, schemas: Any = None, production: Any = ()) -> Any:
            ranked = sorted((weights or {}).items(), key=lambda kv: -kv[1])
            goals = [f"requests to {k}" for k, _w in ranked if isinstance(k, str)][:3]
            goals += [f"{k[1]} = {k[2]!r} in {k[0]}" for k, _w in ranked if isinstance(k, tuple)][:5]
            return client.generate(n, seed, examples=list(production)[:20], coverage_goals=goals,
                                   validate=_validator(schemas, list(production)))

        return ask
    if model is None:
        raise typer.BadParameter("a model file (--model) or an endpoint (--openai)", param_hint="'--model'")
    path = Path(model)
    if _is_llm(path):
        from testfleet.generation.llm import LLMGenerator

        llm = LLMGenerator.load(path)
        return lambda n, weights, seed, schemas=None, production=(): llm.generate(
            n, seed, validate=_validator(schemas, list(production)) if (schemas or production) else None)
    from testfleet.generation.statistical import load_model
    from testfleet.generation.validate import generate_valid

    stat = load_model(path)
    learned = _feedback(path)

    def run(n: int, weights: dict[str, float] | None, seed: int, schemas: Any = None, production: Any = ()) -> Any:
        combined: dict[Any, float] = dict(learned)
        for key, w in (weights or {}).items():
            if isinstance(key, str) and key in stat.endpoints:  # a share: relative to 1/len
                combined[key] = combined.get(key, 1.0) * w * len(stat.endpoints)
            elif isinstance(key, tuple) and key[0] in stat.endpoints:  # a value's factor
                combined[key] = combined.get(key, 1.0) * w
        given = None if schemas is None else {**stat.schemas, **schemas}  # the user's take precedence
        return generate_valid(stat, n, seed, schemas=given, mode=mode, weights=combined or None)

    return run


def _validity(result: Any) -> str:
    text = f"validity {result.validity_rate:.1%}"
    if hasattr(result, "regenerated"):
        return text + f", {result.regenerated} regenerated, {len(result.dropped)} left out"
    return text + f", {len(getattr(result, 'rejected', []))} rejected"


@app.command("sample")
def sample_cmd(
    model: Annotated[str, typer.Argument(help="A model from `generate learn`.")],
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=MAX_COUNT, help="How many requests.")] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED)] = 0,
    mode: Annotated[str, typer.Option("--mode", help="realistic or explore.")] = "realistic",
    schema: Annotated[list[str] | None, typer.Option(
        "--schema", help="An OpenAPI document, or 'METHOD /path=body.schema.json' (a JSON Schema of that endpoint's "
                         "body); repeatable.")] = None,
) -> None:
    """Print generated requests (JSON lines) and how many were valid."""
    try:
        schemas = _schemas(schema)
        result = _generator(model, None, None, mode)(count, None, seed, schemas)
        for request in result.requests:
            sys.stdout.write(json.dumps(request.to_dict(), default=str) + "\n")
        notes.print(f"[dim]{len(result.requests)} requests, {_validity(result)}[/dim]")
    except TestfleetError as exc:
        raise _fail(exc) from None


def _schemas(given: list[str] | None) -> Any:
    """Schemas requests must satisfy: OpenAPI documents, and JSON Schemas of one endpoint's body
    (``'POST /items=item.schema.json'``), merged; None when none is given."""
    if not given:
        return None
    from testfleet.errors import UsageError
    from testfleet.generation.validate import schemas_from_openapi

    merged: dict[str, Any] = {}
    for entry in given:
        endpoint, sep, path = entry.partition("=")
        if sep and " /" in endpoint:
            try:
                body = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(f"cannot read the JSON Schema {path}: {exc}", place="--schema",
                                 expected="'METHOD /path=FILE' with FILE a JSON Schema") from None
            from jsonschema import Draft202012Validator, SchemaError

            try:
                Draft202012Validator.check_schema(body)
            except SchemaError as exc:
                raise UsageError(f"{path} is not a valid JSON Schema: {exc.message}", place="--schema",
                                 expected="a JSON Schema (draft 2020-12)") from None
            merged[endpoint.strip()] = body  # a bare schema is the body's (validate.RequestChecker)
        else:
            merged.update(schemas_from_openapi(entry))
    return merged


@app.command("plan")
def plan_cmd(
    traffic: Annotated[list[str], typer.Option("--traffic", help="Production captures (repeatable).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Directory for the scenario files.")],
    model: Annotated[str | None, typer.Option("--model", help="A model from `generate learn`.")] = None,
    count: Annotated[int, typer.Option("--count", min=1, max=MAX_COUNT, help="Requests in the plan.")] = 100,
    dynamic: Annotated[str, typer.Option("--dynamic", help="Share of generated requests, e.g. 30%.")] = "30%",
    target_coverage: Annotated[bool, typer.Option(
        "--target-coverage", help="Give endpoints rare in production (and past runs) more of the "
                                  "generated share.")] = False,
    openai: Annotated[str | None, typer.Option(
        "--openai", help="Generate through an OpenAI-compatible endpoint (base URL).")] = None,
    openai_model: Annotated[str | None, typer.Option("--openai-model")] = None,
    schema: Annotated[list[str] | None, typer.Option(
        "--schema", help="An OpenAPI document, or 'METHOD /path=body.schema.json' (a JSON Schema of that endpoint's "
                         "body); repeatable.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="realistic or explore.")] = "realistic",
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED)] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a directory that is not an earlier plan.")] = False,
    redact: Annotated[list[str] | None, typer.Option("--redact")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="With --target-coverage: the store whose earlier plan runs count as covered (default: from "
                        "settings, when it exists).")] = None,
) -> None:
    """Write HTTP scenario files mixing production, generated and mutated requests."""
    from testfleet.atomic import check_output
    from testfleet.generation.plan import build_plan, parse_share, write_plan

    try:
        check_output(out, "--out", folder=True)
        share = parse_share(dynamic)
        report = _ingest(traffic, redact)
        schemas = _schemas(schema)
        generate = _generator(model, openai, openai_model, mode) if (model or openai) else None
        validity: list[Any] = []

        def produce(n: int, weights: dict[str, float] | None) -> list[Any]:
            assert generate is not None
            result = generate(n, weights, seed, schemas, report.requests)
            validity.append(result)
            return list(result.requests)

        past = _past_coverage(store) if target_coverage else None
        entries = build_plan(report.requests, count=count, dynamic=share if generate else 0.0, seed=seed,
                             generate=produce if generate else None, target_coverage=target_coverage,
                             past=past)
        written = write_plan(entries, out, force=force)
        counts = Counter(e.origin for e in entries)
        console.print(f"plan of {len(entries)} scenarios -> {escape(str(written))}: "
                      + ", ".join(f"{n} {origin}" for origin, n in sorted(counts.items())))
        for result in validity:
            console.print(f"generated requests: {_validity(result)}")
    except TestfleetError as exc:
        raise _fail(exc) from None


_PLAN_ITEM = re.compile(r"::plan \d+: (\S+) (\S+) \(")


def _past_coverage(store: str | None) -> Counter[str]:
    """How often each endpoint ran in earlier plans (their scenarios' names say it)."""
    from testfleet.cli.history import _open
    from testfleet.errors import StoreError

    try:
        with _open(store) as db:
            rows = db.query("SELECT nodeid, count(*) FROM results WHERE final AND nodeid LIKE '%::plan %' "
                            "GROUP BY nodeid")
    except StoreError:
        return Counter()  # no store yet: nothing ran before
    past: Counter[str] = Counter()
    for nodeid, n in rows:
        found = _PLAN_ITEM.search(nodeid)
        if found:
            past[f"{found.group(1)} {found.group(2)}"] += int(n)
    if past:
        console.print(f"counted {sum(past.values())} executions of earlier plans as covered")
    return past


@app.command("drift")
def drift_cmd(
    model: Annotated[str, typer.Argument(help="A statistical model from `generate learn`.")],
    against: Annotated[list[str], typer.Option("--against", help="A new production capture (repeatable).")],
    threshold: Annotated[float, typer.Option("--threshold", help="PSI above which a field drifts.")] = 0.1,
    generated: Annotated[int, typer.Option(
        "--generated", min=0, max=MAX_COUNT, help="Also compare this many generated requests with the "
                                                  "capture (0: off).")] = 2000,
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="Past the threshold, learn the model again from the new capture.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED)] = 0,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the drift report as JSON.")] = None,
) -> None:
    """Has production moved away from what the model learned (or generates)? Exit 1 if so."""
    from testfleet.generation.drift import drift
    from testfleet.atomic import check_output
    from testfleet.generation.statistical import learn, load_model

    try:
        if json_out:
            check_output(json_out, "--json")
        stat = load_model(model)
        report = _ingest(against, None)
        capture = drift(stat.training, report.requests, threshold_psi=threshold)
        console.print("[bold]the new capture against the model's training data[/bold]")
        console.print(capture.table())
        gen_report = None
        if generated:
            gen_report = drift(report.requests, stat.generate(generated, seed), threshold_psi=threshold)
            console.print("[bold]generated requests against the new capture[/bold]")
            console.print(gen_report.table())
        if json_out:
            from testfleet.atomic import atomic_write_text

            atomic_write_text(json_out, json.dumps({"capture": capture.to_dict(), "generated":
                                                    gen_report.to_dict() if gen_report else None},
                                                   indent=2, default=str) + "\n")
        if not capture.drifting:
            console.print(f"no drift past PSI {threshold} (max {capture.max_psi:.3f})")
            return
        console.print(f"[yellow]drifting:[/yellow] {escape('; '.join(capture.reasons()))}")
        if retrain:
            fresh = learn(report.requests, min_samples=stat.min_samples)
            fresh.save(model)
            console.print(f"retrained {escape(model)} on the new capture ({len(fresh.endpoints)} endpoints)")
        raise typer.Exit(DRIFTING)
    except TestfleetError as exc:
        raise _fail(exc) from None


@app.command("retrain")
def retrain_cmd(
    model: Annotated[str, typer.Argument(help="The model the plan was generated from.")],
    plan: Annotated[str, typer.Option("--plan", help="The plan directory (`generate plan -o`).")],
    run: Annotated[str, typer.Option("--run", help="The run that executed the plan: an id or 'last'.")] = "last",
    weight: Annotated[float, typer.Option(
        "--weight", min=0.0, help="How much more likely a failing request's values become.")] = 3.0,
    store: Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")] = None,
) -> None:
    """Feed the plan's failing requests back into the model (statistical: weights; llm: fine-tune)."""
    from testfleet.cli.history import _open
    from testfleet.generation.records import CapturedRequest

    try:
        manifest_path = Path(plan) / "plan.json"
        if not manifest_path.is_file():
            raise typer.BadParameter(f"{manifest_path} not found: not a plan directory", param_hint="'--plan'")
        manifest = json.loads(manifest_path.read_text())
        by_file = {e["file"]: e for e in manifest["entries"]}
        with _open(store) as db:
            run_id = db.get_run(run).run_id
            rows = db.query("SELECT nodeid, outcome FROM results WHERE run_id = $1 AND final", [run_id])
        failing = [by_file[n.split("::", 1)[0].rsplit("/", 1)[-1]] for n, outcome in rows
                   if outcome in ("failed", "error") and n.split("::", 1)[0].rsplit("/", 1)[-1] in by_file]
        requests = [CapturedRequest.from_dict(e["request"]) for e in failing if e.get("request")]
        console.print(f"{len(failing)} failing plan requests in run {run_id} "
                      f"({sum(1 for e in failing if e['origin'] == 'generated')} generated)")
        if not requests:
            console.print("nothing to feed back")
            return
        path = Path(model)
        if _is_llm(path):
            from testfleet.generation.llm import LLMGenerator

            llm = LLMGenerator.load(path)
            llm.retrain(requests, weight=max(1, round(weight)))  # saved in place
            console.print(f"fine-tuned {escape(model)} with {len(requests)} failure-revealing requests")
            return
        _write_feedback(path, requests, weight)
        console.print(f"weighted up {len({r.endpoint for r in requests})} endpoints and their values "
                      f"-> {escape(str(_feedback_path(path)))}")
    except TestfleetError as exc:
        raise _fail(exc) from None


def _write_feedback(model: Path, requests: list[Any], weight: float) -> None:
    """Endpoints and categorical values of failing requests become more likely next time."""
    from testfleet.atomic import atomic_write_text
    from testfleet.generation.drift import field_values
    from testfleet.generation.statistical import load_model

    stat = load_model(model)
    old = json.loads(_feedback_path(model).read_text()) if _feedback_path(model).is_file() else {}
    endpoints: dict[str, float] = dict(old.get("endpoints", {}))
    values: dict[tuple[str, str, str | int], float] = {(v["endpoint"], v["field"], v["value"]): v["weight"]
                                                       for v in old.get("values", [])}
    for request in requests:
        if request.endpoint not in stat.endpoints:
            continue  # only what the model can draw can be weighted
        endpoints[request.endpoint] = endpoints.get(request.endpoint, 1.0) * weight
        for name, found in field_values(request).items():
            for value in found:
                if isinstance(value, (str, bool, int)):
                    key = (request.endpoint, name, value)
                    values[key] = values.get(key, 1.0) * weight
    atomic_write_text(_feedback_path(model), json.dumps({
        "endpoints": endpoints,
        "values": [{"endpoint": e, "field": f, "value": v, "weight": w} for (e, f, v), w in values.items()],
    }, indent=2, default=str) + "\n")
