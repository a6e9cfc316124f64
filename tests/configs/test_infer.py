"""Spaces inferred from example configs and refined by overlays; space files as data. The
example is always the baseline variant, and malformed overlays or declarations get a
SpaceError naming the place, never another exception."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.configs.infer import infer_space
from testfleet.errors import SpaceError
from testfleet.space import Bool, Choice, Duration, Float, Int, Size
from testfleet.space.declare import space_from_dict
from testfleet.space.sampling import generate

EXAMPLE = {"server": {"port": 8080, "threads": 8, "debug": False, "ratio": 0.5},
           "cache": {"size": "64MB", "ttl": "30s", "mode": "lru"}, "hosts": ["a", "b"],
           "offset": -3, "zero": 0}


def test_inference_rules() -> None:
    space = infer_space(EXAMPLE, "yaml").space
    dims = space.dimensions
    assert dims["server.port"] == Int(2020, 32320, default=8080)
    assert dims["server.debug"] == Bool(default=False)
    assert dims["server.ratio"] == Float(0.125, 2.0, default=0.5)
    assert isinstance(dims["cache.size"], Size) and dims["cache.size"].min == 16 * 1024**2
    assert isinstance(dims["cache.ttl"], Duration) and dims["cache.ttl"].max == 120.0
    assert dims["cache.mode"] == Choice(["lru"])
    assert dims["hosts[0]"] == Choice(["a"])
    assert dims["offset"] == Int(-12, 0, default=-3)
    assert dims["zero"] == Int(0, 100, default=0)


def test_baseline_document_is_the_example_and_variants_keep_its_shape() -> None:
    config = infer_space(EXAMPLE, "yaml")
    assert config.document(config.space.baseline()) == EXAMPLE
    for point in generate(config.space, "random", count=20, seed=2).points:
        doc = config.document(point.params)
        assert doc.keys() == EXAMPLE.keys() and doc["server"].keys() == EXAMPLE["server"].keys()
        assert doc["cache"]["size"].endswith("B")  # written back in the example's own style


def test_overlay_adjusts_replaces_fixes_and_constrains() -> None:
    overlay = {"parameters": {"server.threads": {"min": 1, "max": 64},
                              "cache.mode": ["off", "lru"],
                              "hosts[1]": {"type": "string", "max_len": 3},
                              "server.port": "fixed"},
               "constraints": ["cache.mode == 'off' -> server.threads == 1"]}
    space = infer_space(EXAMPLE, "yaml", overlay=overlay).space
    assert space.dimensions["server.threads"] == Int(1, 64, default=8)
    assert space.dimensions["cache.mode"] == Choice(["off", "lru"])
    assert space.dimensions["server.port"] == Choice([8080])
    for point in generate(space, "pairwise", seed=0).points:
        assert len(point.params["hosts[1]"]) <= 3
        if point.params["cache.mode"] == "off":
            assert point.params["server.threads"] == 1


@pytest.mark.parametrize(("overlay", "place", "message"), [
    ({"parameters": {"server.thread": {"max": 9}}}, "parameters.server.thread",
     "did you mean 'server.threads'"),
    ({"parameters": {"cache.mode": {"max_len": 4}}}, "parameters.cache.mode", "fixed string"),
    ({"parameters": {"server.port": {"min": "low"}}}, "parameters.server.port", "integer"),
    ({"parameters": {"server.port": 5}}, "parameters.server.port", "overlay entry"),
    ({"params": {}}, None, "'parameters' and 'constraints' only"),
    ({"constraints": ["server.port >"]}, "constraints[0]", "unexpected"),
])
def test_bad_overlays_name_the_place(overlay: dict, place: str | None, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        infer_space(EXAMPLE, "yaml", overlay=overlay, overlay_source="o.yaml")
    assert message in str(info.value)
    assert info.value.source == "o.yaml"
    if place:
        assert (info.value.place or "").startswith(place)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=8),
                     st.sampled_from(["64MB", "1KB", "250ms", "30s", "2h"]))
_CONFIGS = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True),
                                                 inner, max_size=4)), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _CONFIGS,
                            min_size=1, max_size=5), seed=st.integers(0, 100))
def test_any_example_is_its_own_baseline_and_variants_are_valid(data: dict, seed: int) -> None:
    try:
        config = infer_space(data, "json")
    except SpaceError:
        return  # nothing to vary (only empty containers) is a clear error, never a crash
    assert config.document(config.space.baseline()) == data
    for point in generate(config.space, "mixed", count=8, seed=seed).points:
        assert config.space.is_valid(point.params)


_JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4),
              st.sampled_from(["int", "float", "choice", "string", "size", "optional", "list",
                               "object", "union", "fixed", "min", "max", "values", "type",
                               "of", "fields", "1KB", "a > 1"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(
                                ["type", "min", "max", "values", "of", "fields", "min_len",
                                 "max_len", "step", "default", "items", "pattern", "dimensions",
                                 "constraints", "a", "b"]), inner, max_size=4)),
    max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(declaration=_JUNK)
def test_any_space_declaration_is_a_space_or_a_space_error(declaration: Any) -> None:
    try:
        space_from_dict(declaration, source="space.yaml")
    except SpaceError as exc:
        assert exc.source == "space.yaml"


@settings(max_examples=200, deadline=None)
@given(overlay=_JUNK)
def test_any_overlay_is_applied_or_refused_with_a_space_error(overlay: Any) -> None:
    try:
        infer_space(EXAMPLE, "yaml", overlay=overlay if isinstance(overlay, dict) else
                    {"parameters": {"server.port": overlay}}, overlay_source="o.yaml")
    except SpaceError as exc:
        assert exc.source == "o.yaml"
