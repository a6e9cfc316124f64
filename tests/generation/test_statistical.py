"""The statistical generator: realistic, deterministic, steerable, and honest about thin data."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from testfleet.errors import UsageError
from testfleet.generation.drift import drift
from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import GenerationError, learn, load_model
from testfleet.generation.synthetic import synthetic_capture
from testfleet.generation.validate import validate


@pytest.fixture(scope="module")
def capture():
    return synthetic_capture(3000, seed=11)


@pytest.fixture(scope="module")
def model(capture):
    return learn(capture)


def key(r: CapturedRequest):
    return (r.endpoint, r.path, repr(r.query), repr(r.headers), repr(r.body))


def test_generated_requests_are_valid_and_realistic(capture, model):
    generated = model.generate(20_000, seed=5)
    assert all(r.source == "generated:statistical" for r in generated)
    assert validate(generated, model.schemas).validity_rate >= 0.99
    report = drift(capture, generated)
    assert report.max_psi < 0.1, report.table()
    assert not report.endpoint_mix_drifting
    novel = len({key(r) for r in generated} - {key(r) for r in capture})
    assert novel > 0.3 * len({key(r) for r in generated})


def test_generation_is_deterministic_for_a_seed(model):
    a = [r.to_dict() for r in model.generate(500, seed=9)]
    assert a == [r.to_dict() for r in model.generate(500, seed=9)]
    assert a != [r.to_dict() for r in model.generate(500, seed=10)]


def test_explore_mode_differs_and_favours_rare_values(capture, model):
    realistic = model.generate(5000, seed=1)
    explore = model.generate(5000, seed=1, mode="explore")
    assert drift(realistic, explore).max_psi > 0.25

    def share(requests, value):
        cats = [r.body["category"] for r in requests if r.endpoint == "POST /items"]
        return Counter(cats)[value] / len(cats)
    assert share(explore, "office") > share(realistic, "office") * 1.5
    assert validate(explore, model.schemas).validity_rate >= 0.99


def test_weights_shift_frequencies(model):
    base = Counter(r.endpoint for r in model.generate(4000, seed=2))
    heavy = Counter(r.endpoint for r in model.generate(4000, seed=2, weights={"DELETE /items/{id}": 5.0}))
    assert heavy["DELETE /items/{id}"] > 3 * base["DELETE /items/{id}"]
    only = model.generate(2000, seed=2, endpoints=["POST /items"],
                          weights={("POST /items", "body.category", "garden"): 10.0})
    plain = model.generate(2000, seed=2, endpoints=["POST /items"])

    def garden(requests):
        return sum(r.body["category"] == "garden" for r in requests)
    assert {r.endpoint for r in only} == {"POST /items"}
    assert garden(only) > 3 * garden(plain)
    with pytest.raises(GenerationError, match="unknown endpoint"):
        model.generate(1, seed=0, weights={"GET /nope": 2.0})


def test_save_load_round_trip_generates_the_same(tmp_path, model):
    path = model.save(tmp_path / "model.json")
    loaded = load_model(path)
    assert [r.to_dict() for r in loaded.generate(300, seed=4)] == [r.to_dict() for r in model.generate(300, seed=4)]
    assert [[r.to_dict() for r in s] for s in loaded.sessions(5, seed=4)] == \
        [[r.to_dict() for r in s] for s in model.sessions(5, seed=4)]
    assert loaded.training.to_dict() == model.training.to_dict()
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(GenerationError, match="not a statistical model"):
        load_model(tmp_path / "bad.json")


def _requests(endpoint: str, n: int) -> list[CapturedRequest]:
    method, template = endpoint.split(" ")
    return [CapturedRequest(method, template, template, body={"n": i}, body_kind="json") for i in range(n)]


def test_too_few_samples_are_skipped_with_reasons_or_refused():
    model = learn(_requests("POST /a", 8) + _requests("GET /b", 2), min_samples=5)
    assert list(model.endpoints) == ["POST /a"]
    assert "2 samples" in model.skipped["GET /b"] and "min_samples=5" in model.skipped["GET /b"]
    with pytest.raises(GenerationError, match="no endpoint has at least 5 samples") as info:
        learn(_requests("POST /a", 3) + _requests("GET /b", 2))
    assert isinstance(info.value, UsageError)
    with pytest.raises(GenerationError, match="no requests"):
        learn([])


def test_sessions_follow_observed_transitions_only(capture, model):
    observed = set()
    starts = set()
    by_session: dict[str, list[CapturedRequest]] = {}
    for r in capture:
        by_session.setdefault(r.session, []).append(r)
    for calls in by_session.values():
        starts.add(calls[0].endpoint)
        observed.update(zip([c.endpoint for c in calls], [c.endpoint for c in calls[1:]]))
    flows = model.sessions(300, seed=8)
    assert len(flows) == 300
    for flow in flows:
        assert flow[0].endpoint in starts
        assert len({r.session for r in flow}) == 1
        for a, b in itertools.pairwise(flow):
            assert (a.endpoint, b.endpoint) in observed
    assert len({tuple(r.endpoint for r in f) for f in flows}) > 3
