"""Drift per field: PSI, KS and Jensen-Shannon between two samples of requests."""

from __future__ import annotations

import numpy as np
import pytest

from testfleet.generation.drift import Profile, drift, profile, psi
from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import learn
from testfleet.generation.synthetic import synthetic_capture


def orders(n: int, seed: int, *, shift: float = 0.0, rush: float = 0.1) -> list[CapturedRequest]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        body = {"amount": round(float(rng.normal(50 + shift, 10)), 2),
                "channel": str(rng.choice(["web", "app", "phone"], p=[0.6, 0.3, 0.1])),
                "items": int(rng.integers(1, 5))}
        if rng.random() < rush:
            body["rush"] = True
        out.append(CapturedRequest("POST", "/orders", "/orders", body=body, body_kind="json"))
    return out


def test_identical_samples_do_not_drift():
    sample = orders(2000, 1)
    report = drift(sample, sample)
    assert report.max_psi == pytest.approx(0.0, abs=1e-9)
    assert not report.drifting and report.endpoint_psi == pytest.approx(0.0, abs=1e-9)
    assert all(f.ks_pvalue == pytest.approx(1.0) for f in report.fields if f.kind == "numeric")
    other_seed = drift(sample, orders(2000, 2))
    assert other_seed.max_psi < 0.05 and not other_seed.drifting


def test_shifted_numeric_field_is_flagged_first():
    report = drift(orders(2000, 1), orders(2000, 2, shift=15))
    top = report.fields[0]
    assert (top.endpoint, top.field, top.kind) == ("POST /orders", "body.amount", "numeric")
    assert top.drifting and top.psi > 0.25 and top.ks_pvalue < 1e-6
    assert [f.field for f in report.drifting_fields] == ["body.amount"]


def test_categorical_presence_and_endpoint_mix_drift():
    ref = orders(2000, 1)
    changed = [CapturedRequest(r.method, r.path, r.template, body={**r.body, "channel": "app"},
                               body_kind="json") if i % 2 else r for i, r in enumerate(orders(2000, 2, rush=0.5))]
    report = drift(ref, changed)
    top = report.fields[0]
    assert top.field == "body.channel" and top.kind == "categorical" and top.drifting and top.js > 0.1
    rush = next(p for p in report.presence if p.field == "body.rush")
    assert rush.drifting and rush.other_rate > rush.reference_rate + 0.3
    mixed = ref + [CapturedRequest("GET", "/health", "/health")] * 1500
    assert drift(ref + [CapturedRequest("GET", "/health", "/health")] * 20, mixed).endpoint_mix_drifting


def test_psi_definition():
    assert psi([50, 50], [50, 50]) == 0.0
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi([50, 50], [90, 10]) == pytest.approx(expected)


def test_model_training_profile_against_a_new_capture(tmp_path):
    model = learn(synthetic_capture(8000, seed=1))
    stored = Profile.from_dict(model.training.to_dict())
    same = drift(stored, profile(synthetic_capture(8000, seed=2)))
    assert not same.drifting_fields, same.table()
    newer = synthetic_capture(8000, seed=3)
    for r in newer:
        if r.endpoint == "POST /items":
            r.body["price"] = round(r.body["price"] * 3, 2)
    report = drift(stored, newer)
    assert (report.fields[0].endpoint, report.fields[0].field) == ("POST /items", "body.price")


def test_presence_drift_alone_is_named_not_blamed_on_the_endpoint_mix():
    # every PSI stays below the threshold; only how often the optional 'rush' appears moves
    report = drift(orders(2000, 1, rush=0.1), orders(2000, 2, rush=0.6))
    assert report.drifting and not report.drifting_fields and not report.endpoint_mix_drifting
    [reason] = report.reasons()
    assert reason.startswith("POST /orders body.rush present in 10% then 60%")
    assert "endpoint mix" not in reason


def test_reasons_name_fields_with_their_psi_and_the_mix_only_when_it_drifts():
    report = drift(orders(2000, 1), orders(2000, 2, shift=15))
    assert report.reasons()[0].startswith("POST /orders body.amount (PSI ")
    assert not any("endpoint mix" in r for r in report.reasons())
    ref = orders(500, 1) + [CapturedRequest("GET", "/health", "/health")] * 20
    mixed = orders(500, 1) + [CapturedRequest("GET", "/health", "/health")] * 1500
    assert drift(ref, mixed).reasons()[-1].startswith("the endpoint mix (PSI ")
