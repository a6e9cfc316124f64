"""Round-tripping arbitrary item names (property-based: needs Hypothesis, the `examples` extra;
skipped on a plain `pip install testfleet`)."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("hypothesis", reason="pip install 'testfleet[examples]' for the property-based tests")

from hypothesis import given, settings  # noqa: E402 - only once Hypothesis is known to be there
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.pagination


@settings(max_examples=30, deadline=None)
@given(name=st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
def test_names_round_trip(client: httpx.Client, name: str) -> None:
    created = client.post("/items", json={"name": name, "quantity": 1, "price": 1.0})
    assert created.status_code == 201, created.text
    fetched = client.get(f"/items/{created.json()['id']}")
    assert fetched.json()["name"] == name
    client.delete(f"/items/{created.json()['id']}")
