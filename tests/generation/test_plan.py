"""Plans from traffic: the shares asked for, seeded, mutations that really change one thing,
coverage targeting that favours rare endpoints, scenario files that load and escape braces,
and nothing written when something fails."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from testfleet.adapters.http_scenarios import load_scenario
from testfleet.errors import UsageError
from testfleet.generation.plan import build_plan, mutate, parse_share, write_plan
from testfleet.generation.records import CapturedRequest


def _capture() -> list[CapturedRequest]:
    out = []
    for i in range(30):
        out.append(CapturedRequest("POST", "/items", "/items", body={"name": f"bolt {{{i}}}", "quantity": i,
                                                                    "price": 0.5}, body_kind="json",
                                   source=f"cap.jsonl:{i + 1}"))
        out.append(CapturedRequest("GET", f"/items/{i}", "/items/{id}", path_params={"id": str(i)},
                                   source=f"cap.jsonl:{i + 31}"))
    out.append(CapturedRequest("GET", "/items", "/items", query={"limit": ["10"]}, source="cap.jsonl:61"))
    return out


def _generated(n: int, weights: dict | None) -> list[CapturedRequest]:
    weights = {k: w for k, w in (weights or {}).items() if isinstance(k, str)}  # endpoint shares
    endpoints = sorted(weights) if weights else ["GET /items/{id}"]
    picks = [endpoints[i % len(endpoints)] for i in range(n)]
    if weights:  # deterministic: as many of each as its weight says
        picks = [e for e in endpoints for _ in range(round(weights[e] * n))][:n]
    return [CapturedRequest(e.split()[0], "/items", e.split()[1], source="generated:test") for e in picks]


def test_the_shares_are_what_was_asked_and_the_seed_decides() -> None:
    plan = build_plan(_capture(), count=60, dynamic=0.3, seed=4, generate=_generated)
    counts = Counter(e.origin for e in plan)
    assert counts == {"generated": 18, "mutated": 14, "production": 28}
    again = build_plan(_capture(), count=60, dynamic=0.3, seed=4, generate=_generated)
    assert [(e.origin, e.request.to_dict()) for e in plan] == [(e.origin, e.request.to_dict()) for e in again]
    other = build_plan(_capture(), count=60, dynamic=0.3, seed=5, generate=_generated)
    assert [e.request.to_dict() for e in other] != [e.request.to_dict() for e in plan]


@pytest.mark.parametrize(("text", "share"), [("30%", 0.3), ("30", 0.3), ("0.3", 0.3), ("0", 0.0), ("100%", 1.0)])
def test_shares_parse(text: str, share: float) -> None:
    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["lots", "150%", "-5%"])
def test_bad_shares_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--dynamic"):
        parse_share(text)


def test_a_mutation_changes_one_thing_and_says_what() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for original in _capture():
        mutated, what = mutate(original, rng)
        if original.body or original.query or original.path_params:
            assert mutated.to_dict() != original.to_dict(), what
            assert what.split(".", 1)[0] in ("body", "query", "path"), what
        assert original.source in mutated.source


def test_coverage_targeting_gives_rare_endpoints_more_of_the_generated_share() -> None:
    plan = build_plan(_capture(), count=100, dynamic=0.5, seed=1, generate=_generated, target_coverage=True)
    generated = Counter(e.request.endpoint for e in plan if e.origin == "generated")
    assert generated["GET /items"] > generated["POST /items"]  # 1 production sample vs 30


def test_written_plans_load_as_scenarios_with_literal_braces(tmp_path: Path) -> None:
    plan = build_plan(_capture(), count=12, dynamic=0.25, seed=2, generate=_generated)
    out = write_plan(plan, tmp_path / "plan")
    files = sorted(out.glob("*.scenario.yaml"))
    manifest = json.loads((out / "plan.json").read_text())
    assert len(files) == 12 == manifest["count"] and manifest["origins"]["generated"] == 3
    for path in files:
        scenario = load_scenario(path)
        assert scenario.steps[0].expect.status == list(range(100, 500))
    posts = [p for p in files if "-post-" in p.name]
    assert posts and "{{" in posts[0].read_text()  # "bolt {3}" stays a literal, not a placeholder


def test_nothing_is_written_when_a_request_cannot_become_a_scenario(tmp_path: Path) -> None:
    plan = build_plan(_capture(), count=5, dynamic=0.0, seed=2, generate=None)
    plan[2].request.method = "FETCH"  # not an HTTP method a scenario accepts
    with pytest.raises(UsageError):
        write_plan(plan, tmp_path / "plan")
    assert not (tmp_path / "plan").exists() and not list(tmp_path.iterdir())


def test_coverage_targeting_weights_rare_values_of_categorical_fields() -> None:
    capture = _capture()
    for i, request in enumerate(capture):
        if request.body:
            request.body["colour"] = "red" if i % 10 else "teal"  # teal is rare
    seen: list[dict] = []

    def recording(n: int, weights: dict | None) -> list[CapturedRequest]:
        seen.append(dict(weights or {}))
        return _generated(n, weights)

    build_plan(capture, count=20, dynamic=0.5, seed=1, generate=recording, target_coverage=True)
    [weights] = seen
    assert weights[("POST /items", "body.colour", "teal")] > 1
    assert ("POST /items", "body.colour", "red") not in weights  # the common value is the yardstick
