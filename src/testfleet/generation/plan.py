"""Test plans from traffic: HTTP scenario files mixing production, generated and mutated requests.

``testfleet generate plan --traffic CAPTURE... --model MODEL --dynamic 30% --count N`` writes one
scenario file per request into a directory (plus ``plan.json``: origin, endpoint and source of
each), which ``testfleet run`` then collects like any scenarios:

* **generated** — the given share of ``count``, from the model (statistical, llm or openai);
  with coverage targeting, each endpoint's share of the generated requests is proportional to
  its rarity (``1 / (1 + times seen in production)``), and within a categorical field each value
  is weighted by how much rarer it is than the field's most common one, so what production
  rarely exercises is tested most;
* **mutated** — a third of the rest: production requests with one change each, seeded: a number
  pushed to an edge (0, negative, huge, doubled), a string emptied or made very long or non-ASCII,
  a body field dropped, an unknown field added, a query value changed — and their order shuffled;
* **production** — the remainder, replayed as captured (a seeded sample).

Every request expects *no server error* (status 1xx–4xx): a 5xx is a bug whatever the input,
while a 404 for an id that does not exist on the test instance is not. Literal braces in paths,
queries and bodies are escaped, since scenario strings are templates. Nothing is written unless
everything is: the files go to a staging directory that is renamed into place.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from testfleet.atomic import atomic_directory
from testfleet.errors import UsageError
from testfleet.generation.records import REDACTED, CapturedRequest

__all__ = ["PlanEntry", "build_plan", "mutate", "parse_share", "write_plan"]

NO_SERVER_ERROR = ["1xx", "2xx", "3xx", "4xx"]
MANIFEST = "plan.json"
_SKIP_HEADERS = {"host", "content-length", "connection", "cookie", "authorization", "accept-encoding"}
Generate = Callable[[int, dict[Any, float] | None], list[CapturedRequest]]
_CATEGORIES = 20  # a field with more distinct values is not categorical
_MAX_VALUE_WEIGHT = 10.0


@dataclass
class PlanEntry:
    origin: str  # production | generated | mutated
    request: CapturedRequest
    note: str = ""


def parse_share(text: str) -> float:
    """``30%``, ``30`` or ``0.3`` -> 0.3."""
    value = str(text).strip()
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise UsageError(f"--dynamic {text!r} is not a share", place="--dynamic",
                         expected="a percentage such as 30%") from None
    share = number / 100 if value.endswith("%") or number > 1 else number
    if not 0 <= share <= 1:
        raise UsageError(f"--dynamic {text!r} is not between 0% and 100%", place="--dynamic",
                         expected="a percentage such as 30%")
    return share


def build_plan(production: Sequence[CapturedRequest], *, count: int, dynamic: float, seed: int,
               generate: Generate | None, target_coverage: bool = False,
               past: Counter[str] | None = None) -> list[PlanEntry]:
    if count < 1:
        raise UsageError("--count must be at least 1", place="--count")
    if not production:
        raise UsageError("the capture has no requests to plan from", place="--traffic")
    rng = np.random.default_rng(seed)
    n_generated = round(count * dynamic) if generate is not None else 0
    rest = count - n_generated
    n_mutated = rest // 3
    n_production = rest - n_mutated
    entries: list[PlanEntry] = []
    picks = rng.choice(len(production), size=n_production, replace=len(production) < n_production)
    entries += [PlanEntry("production", production[int(i)], production[int(i)].source) for i in picks]
    sources = rng.choice(len(production), size=n_mutated, replace=True)
    for i in sources:
        mutated, what = mutate(production[int(i)], rng)
        entries.append(PlanEntry("mutated", mutated, what))
    if n_generated:
        weights = _rarity(production, past) if target_coverage else None
        made = generate(n_generated, weights) if generate is not None else []
        entries += [PlanEntry("generated", req, req.source) for req in made]
    order = rng.permutation(len(entries))
    return [entries[int(i)] for i in order]


def _rarity(production: Sequence[CapturedRequest], past: Counter[str] | None) -> dict[Any, float]:
    """Endpoint shares proportional to rarity, and, per categorical field (at most
    ``_CATEGORIES`` distinct values), each value weighted by how much rarer it is than the
    field's most common value (capped at ``_MAX_VALUE_WEIGHT``)."""
    from testfleet.generation.drift import field_values

    seen = Counter(req.endpoint for req in production)
    seen.update(past or {})
    weights: dict[Any, float] = {endpoint: 1.0 / (1 + n) for endpoint, n in seen.items()}
    total = sum(weights.values())
    weights = {endpoint: w / total for endpoint, w in weights.items()}
    values: dict[tuple[str, str], Counter[Any]] = {}
    for req in production:
        for name, found in field_values(req).items():
            for value in found:
                if isinstance(value, (str, bool)) and value != REDACTED:
                    values.setdefault((req.endpoint, name), Counter())[value] += 1
    for (endpoint, name), counts in values.items():
        if 1 < len(counts) <= _CATEGORIES:
            top = max(counts.values())
            for value, n in counts.items():
                if n < top:
                    weights[(endpoint, name, value)] = min(_MAX_VALUE_WEIGHT, top / n)
    return weights


# -- mutation of production requests ---------------------------------------------------------------
def mutate(request: CapturedRequest, rng: np.random.Generator) -> tuple[CapturedRequest, str]:
    """One seeded change to a copy of ``request``, and what it was."""
    copy = CapturedRequest.from_dict(json.loads(json.dumps(request.to_dict(), default=str)))
    copy.source = f"mutated:{request.source}"
    options: list[Callable[[], str | None]] = []
    if isinstance(copy.body, dict) and copy.body:
        options += [lambda: _mutate_field(copy.body, rng), lambda: _drop_field(copy.body, rng),
                    lambda: _add_field(copy.body, rng)]
    if copy.query:
        options.append(lambda: _mutate_query(copy.query, rng))
    options.append(lambda: _mutate_path(copy, rng))
    for index in rng.permutation(len(options)):
        what = options[int(index)]()
        if what:
            return copy, what
    return copy, "replayed unchanged (nothing to mutate)"


def _edge_number(value: float, rng: np.random.Generator) -> float:
    choices = [0, -1, -abs(value) if value else -7, value * 2, 2**31, 2**63,
               1e308 if isinstance(value, float) else 10**18]
    new = choices[int(rng.integers(len(choices)))]
    return type(value)(new) if isinstance(value, int) and not isinstance(new, float) else new


def _edge_string(value: str, rng: np.random.Generator) -> str:
    choices = ["", value * 50 or "x" * 1000, value + " \u00e9\u4e2d\U0001F600", " " + value + " ", value.upper()]
    return choices[int(rng.integers(len(choices)))]


def _mutate_field(body: dict[str, Any], rng: np.random.Generator) -> str | None:
    keys = [k for k, v in body.items()
            if v != REDACTED and isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    if not keys:
        return None
    key = keys[int(rng.integers(len(keys)))]
    old = body[key]
    body[key] = _edge_number(old, rng) if isinstance(old, (int, float)) else _edge_string(old, rng)
    return f"body.{key}: {old!r} -> {body[key]!r}"[:200]


def _drop_field(body: dict[str, Any], rng: np.random.Generator) -> str:
    key = list(body)[int(rng.integers(len(body)))]
    del body[key]
    return f"body.{key} dropped"


def _add_field(body: dict[str, Any], rng: np.random.Generator) -> str:
    name = f"unexpected_{int(rng.integers(1000))}"
    body[name] = ["x", 1, None, {"a": 1}][int(rng.integers(4))]
    return f"body.{name} added"


def _mutate_query(query: dict[str, list[str]], rng: np.random.Generator) -> str:
    key = sorted(query)[int(rng.integers(len(query)))]
    old = query[key][0] if query[key] else ""
    new = str(_edge_number(int(old), rng)) if re.fullmatch(r"-?\d+", old) else _edge_string(old, rng)
    query[key] = [new]
    return f"query.{key}: {old!r} -> {new!r}"[:200]


def _mutate_path(request: CapturedRequest, rng: np.random.Generator) -> str | None:
    if not request.path_params:
        return None
    name = sorted(request.path_params)[int(rng.integers(len(request.path_params)))]
    old = request.path_params[name]
    new = str(_edge_number(int(old), rng)) if re.fullmatch(r"-?\d+", old) else _edge_string(old, rng) or "x"
    request.path = request.path.replace(old, new, 1)
    request.path_params[name] = new
    return f"path.{name}: {old!r} -> {new!r}"[:200]


# -- writing -------------------------------------------------------------------------------------
def _literal(value: Any) -> Any:
    """Scenario strings are templates: literal braces are doubled."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def scenario_of(entry: PlanEntry, number: int) -> dict[str, Any]:
    req = entry.request
    request: dict[str, Any] = {"method": req.method, "path": _literal(req.path)}
    if req.query:
        request["query"] = {k: _literal(v[0] if len(v) == 1 else ",".join(v)) for k, v in req.query.items()}
    headers = {k: _literal(v) for k, v in req.headers.items() if k.lower() not in _SKIP_HEADERS and v != REDACTED}
    if headers:
        request["headers"] = headers
    if req.body_kind == "json" and req.body is not None:
        request["json"] = _literal(req.body)
    elif req.body is not None and req.body_kind in ("text", "form"):
        request["body"] = _literal(str(req.body))
    return {"name": f"plan {number:04d}: {req.method} {req.template} ({entry.origin})",
            "description": entry.note[:300],
            "steps": [{"name": entry.origin, "request": request, "expect": {"status": NO_SERVER_ERROR}}]}


def write_plan(entries: Sequence[PlanEntry], out: str | Path, *, force: bool = False) -> Path:
    """One ``NNNN-<method>-<slug>.scenario.yaml`` per entry and ``plan.json``, atomically."""
    from testfleet.adapters.http_scenarios import scenario_from_dict

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file() and not force:
        raise UsageError(f"{out} exists and is not an earlier plan", source=str(out),
                         expected="a new or empty directory (or one `generate plan` wrote)")
    with atomic_directory(out) as staging:
        manifest = []
        for number, entry in enumerate(entries, 1):
            data = scenario_of(entry, number)
            scenario_from_dict(data, source=f"plan entry {number}")  # every file must load
            slug = re.sub(r"[^a-z0-9]+", "-", entry.request.template.lower()).strip("-") or "root"
            name = f"{number:04d}-{entry.request.method.lower()}-{slug}.scenario.yaml"
            (staging / name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
            manifest.append({"file": name, "origin": entry.origin, "endpoint": entry.request.endpoint,
                             "source": entry.request.source, "note": entry.note,
                             "request": entry.request.to_dict()})
        counts = Counter(e.origin for e in entries)
        (staging / MANIFEST).write_text(json.dumps({"count": len(entries), "origins": counts,
                                                    "entries": manifest}, indent=2) + "\n")
    return out
