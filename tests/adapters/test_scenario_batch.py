"""Scenario batches (repeat, concurrency) on the asyncio runner, against real servers on 127.0.0.1:
the bundled stdlib inventory service, and its ASGI variant under uvicorn."""

from __future__ import annotations

import asyncio
import re
import socket
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.conftest import serve
from testfleet.adapters.http_scenarios import (
    BatchResult,
    Scenario,
    ScenarioError,
    load_scenario,
    run_batch,
    run_scenario,
    run_scenario_async,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory"

CREATE_AND_FETCH = """
name: create and fetch
params:
  qty: {type: int, min: 1, max: 100}
steps:
  - name: create
    request: {method: POST, path: /items, json: {name: w, quantity: "{qty}", price: 2.5}}
    expect: {status: [201]}
    extract: {item_id: "$.id"}
  - name: fetch
    request: {method: GET, path: "/items/{item_id}"}
    expect: {status: [200], schema: {type: object, required: [quantity]}}
"""

HEALTH = "steps: [{name: ping, request: {method: GET, path: /health}, expect: {status: [200]}}]\n"




@pytest.fixture(scope="module")
def asgi_url() -> Iterator[str]:
    pytest.importorskip("uvicorn")
    yield from serve(EXAMPLE / "inventory_asgi.py")


def scenario(tmp_path: Path, text: str, name: str = "case.scenario.yaml") -> Scenario:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_scenario(path)


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- the keys -------------------------------------------------------------------------------------
def test_repeat_and_concurrency_default_to_one_and_load(tmp_path):
    plain = scenario(tmp_path, HEALTH)
    assert (plain.repeat, plain.concurrency) == (1, 1)
    loaded = scenario(tmp_path, "repeat: 30\nconcurrency: 4\n" + HEALTH)
    assert (loaded.repeat, loaded.concurrency) == (30, 4)


@pytest.mark.parametrize("key,value", [("repeat", 0), ("repeat", -3), ("repeat", "10"),
                                       ("repeat", True), ("concurrency", 1.5),
                                       ("concurrency", None), ("concurrency", [2])])
def test_bad_repeat_or_concurrency_names_file_and_place(tmp_path, key, value):
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(yaml.safe_dump({key: value}) + HEALTH, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message and f"[{key}]" in message
    assert "integer >= 1" in message


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["repeat", "concurrency"]),
                       st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats()
                       | st.text(max_size=3) | st.lists(st.integers(), max_size=2)))
def test_any_repeat_or_concurrency_loads_or_raises_a_scenario_error(values):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.scenario.yaml"
        path.write_text(yaml.safe_dump(values) + HEALTH, encoding="utf-8")
        try:
            loaded = load_scenario(path)
        except ScenarioError as exc:
            assert str(path) in str(exc)
        else:
            assert loaded.repeat == values.get("repeat", 1) >= 1
            assert loaded.concurrency == values.get("concurrency", 1) >= 1


def test_bad_run_batch_arguments_are_scenario_errors(tmp_path):
    loaded = scenario(tmp_path, HEALTH)
    for kwargs in ({"repeat": 0}, {"concurrency": 0}, {"concurrency": 2.0}, {"duration": -1}):
        with pytest.raises(ScenarioError, match="run_batch"):
            run_batch(loaded, "http://127.0.0.1:1", **kwargs)


# -- batches --------------------------------------------------------------------------------------
def test_batch_runs_every_execution_with_bounded_concurrency(tmp_path, base_url):
    loaded = scenario(tmp_path, CREATE_AND_FETCH)
    seen: list[float] = []
    result = run_batch(loaded, base_url, {"qty": 7}, repeat=200, concurrency=50,
                       on_latency=seen.append)
    assert isinstance(result, BatchResult)
    assert result.ok, result.message
    assert (result.executions, result.passed, result.failed) == (200, 200, 0)
    assert result.requests == 400 == len(result.latencies_ms)
    assert 1 < result.peak_in_flight <= 50
    assert result.params == {"qty": 7}
    assert result.wall_s > 0 and result.requests_per_s == pytest.approx(400 / result.wall_s)
    assert len(seen) == 400 and sorted(seen) == sorted(result.latencies_ms.tolist())
    assert "200 executions passed" in result.message and "400 requests" in result.message
    # every execution created its own item: 200 new ones, each fetched with quantity 7
    listing = httpx.get(f"{base_url}/items", params={"limit": 500}).json()
    assert sum(1 for item in listing["items"] if item["quantity"] == 7) >= 200


def test_the_scenario_keys_are_the_defaults(tmp_path, base_url):
    loaded = scenario(tmp_path, "repeat: 30\nconcurrency: 3\n" + HEALTH)
    result = run_batch(loaded, base_url)
    assert result.ok and result.executions == 30 and result.requests == 30
    assert result.concurrency == 3 and 1 <= result.peak_in_flight <= 3
    assert run_batch(loaded, base_url, repeat=5, concurrency=1).peak_in_flight == 1


def test_failing_expectation_counts_failed_executions_and_keeps_the_first_few(tmp_path,
                                                                              base_url):
    loaded = scenario(tmp_path, """
        steps:
          - name: ping
            request: {method: GET, path: /health}
            expect: {status: [201]}
          - name: never runs
            request: {method: GET, path: /health}
    """)
    calls: list[float] = []
    result = run_batch(loaded, base_url, repeat=12, concurrency=4, on_latency=calls.append)
    assert not result.ok
    assert (result.executions, result.passed, result.failed) == (12, 0, 12)
    assert len(result.failures) == 5
    assert result.requests == 12 == len(calls)  # the second step never ran
    first = result.failures[0]
    assert "'ping'" in first.message and "status 200, expected one of [201]" in first.message
    assert result.message.startswith("12 of 12 executions failed; first: step 'ping'")
    # the same message as the synchronous runner gives
    assert first.message == run_scenario(loaded, base_url).message


def test_refused_connection_is_a_failed_execution_not_an_exception(tmp_path):
    loaded = scenario(tmp_path, HEALTH)
    result = run_batch(loaded, refused_url(), repeat=6, concurrency=3, timeout=2.0)
    assert (result.executions, result.failed) == (6, 0 + 6)
    assert result.requests == 6
    assert "no response: ConnectError" in result.message and "'ping'" in result.message


def test_duration_bounds_a_batch_without_repeat(tmp_path, base_url):
    loaded = scenario(tmp_path, HEALTH)
    result = run_batch(loaded, base_url, concurrency=4, duration=0.3)
    assert result.ok, result.message
    assert result.executions > 4
    assert result.wall_s < 3.0


def test_run_batch_from_a_thread_and_from_inside_a_running_loop(tmp_path, base_url):
    loaded = scenario(tmp_path, HEALTH)
    box: list[BatchResult] = []
    thread = threading.Thread(target=lambda: box.append(run_batch(loaded, base_url, repeat=10,
                                                                  concurrency=5)))
    thread.start()
    thread.join(30)
    assert box and box[0].ok and box[0].executions == 10

    async def inside() -> BatchResult:
        return run_batch(loaded, base_url, repeat=10, concurrency=5)

    assert asyncio.run(inside()).executions == 10


def test_run_scenario_async_matches_the_synchronous_runner(tmp_path, base_url):
    loaded = scenario(tmp_path, CREATE_AND_FETCH)

    async def go() -> tuple:
        latencies: list[float] = []
        async with httpx.AsyncClient() as client:
            result = await run_scenario_async(loaded, base_url, {"qty": 3}, client=client,
                                              timeout=5.0, on_latency=latencies.append)
            assert not client.is_closed
        return result, latencies

    result, latencies = asyncio.run(go())
    assert result.ok and result.message == "passed" and result.params == {"qty": 3}
    assert [s.name for s in result.steps] == ["create", "fetch"]
    assert result.steps[0].extracted["item_id"] == int(result.steps[1].url.rsplit("/", 1)[1])
    assert latencies == [s.latency_ms for s in result.steps]


def test_a_batch_against_the_asgi_example_under_uvicorn(tmp_path, asgi_url):
    loaded = scenario(tmp_path, CREATE_AND_FETCH)
    result = run_batch(loaded, asgi_url, repeat=300, concurrency=100)
    assert result.ok, result.message
    assert result.executions == 300 and result.requests == 600
    assert 1 < result.peak_in_flight <= 100
    assert httpx.put(f"{asgi_url}/items/1").status_code == 501


ENGINE_CASE = """
    params:
      qty: {type: int, min: 1, max: 9, default: 3}
    steps:
      - name: create
        request: {method: POST, path: /items, query: {verbose: true},
                  json: {name: "w\u00e9", quantity: "{qty}", price: 1.5}}
        expect: {status: [201], schema: {type: object, required: [id], properties: {name: {const: "w\u00e9"}}},
                 contains: ["quantity"]}
        extract: {item_id: "$.id"}
      - name: fetch
        request: {method: GET, path: "/items/{item_id}"}
        expect: {status: [200], regex: '"quantity": ?3'}
      - name: wrong on purpose
        request: {method: GET, path: /items/99999999}
        expect: {status: [200]}
"""


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
def test_both_engines_send_the_same_requests_and_judge_alike(tmp_path, base_url, engine):
    pytest.importorskip("aiohttp")
    loaded = scenario(tmp_path, ENGINE_CASE)
    result = run_batch(loaded, base_url, repeat=4, concurrency=2, engine=engine)
    assert (result.executions, result.failed, result.requests) == (4, 4, 12)
    reference = run_scenario(loaded, base_url).message  # the synchronous httpx runner

    def strip(text: str) -> str:
        return re.sub(r"/items/\d+", "/items/N", text)

    assert strip(result.failures[0].message) == strip(reference)
    assert "step 'wrong on purpose'" in reference and "status 404" in reference


def test_an_unknown_engine_is_a_scenario_error(tmp_path, base_url):
    with pytest.raises(ScenarioError, match="engine"):
        run_batch(scenario(tmp_path, HEALTH), base_url, engine="curl")
