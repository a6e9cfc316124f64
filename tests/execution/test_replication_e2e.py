"""Replication in a real run: a test that fails only on gw1 is replayed on gw0 and on gw1 again,
and classified environment-specific, naming the worker; the replays are stored, marked as
replays, and leave the run's counts alone."""

from __future__ import annotations

import pytest

from execution.conftest import run_cli, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

# Fails on gw1 only. gw0 waits (bounded) until gw1 has run a test, so gw1 surely runs one.
ONLY_ON_GW1 = """
import os
import time
from pathlib import Path

import pytest

MARKS = Path(__file__).parent.parent / "marks"


@pytest.mark.parametrize("n", range(4))
def test_env(n):
    worker = os.environ["TESTFLEET_WORKER"]
    MARKS.mkdir(exist_ok=True)
    (MARKS / worker).write_text("")
    deadline = time.monotonic() + 30
    while worker == "gw0" and not (MARKS / "gw1").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker != "gw1", "broken on gw1"
"""


def test_a_failure_only_on_one_worker_is_replayed_and_classified_environment_specific(suite) -> None:
    root = suite({"tests/test_env.py": ONLY_ON_GW1})
    ran = run_testfleet(root, "--replicate-budget", "12", "--seed", "3")
    assert ran.returncode == 1, ran.log
    results = ran.results()
    final = [r for r in results if r.final]
    assert len(final) == 4, ran.log  # replays are not counted as tests
    failing = {r.variant_id: r for r in final if r.outcome == "failed"}
    assert failing and {r.worker for r in failing.values()} == {"gw1"}, ran.log
    with Store.open(ran.store, read_only=True) as store:
        run_id = store.get_run("last").run_id
        events = TelemetryStore(store).events(run_id, ["replication", "replay"])
    verdicts = {e["variant_id"]: e for e in events if e["kind"] == "replication"}
    replays = [e for e in events if e["kind"] == "replay"]
    # each failing test is replicated (budget allowing) and found to break on gw1 only
    assert verdicts and set(verdicts) <= set(failing), events
    for verdict in verdicts.values():
        assert verdict["class"] == "environment-specific" and verdict["keys"] == ["worker"], verdict
        assert verdict["differences"]["worker"] == {"failing": ["gw1"], "passing": ["gw0"]}
        # replayed on the other worker and on the same one again
        assert {r["worker"] for r in verdict["replays"]} == {"gw0", "gw1"}
    # each (variant, worker, repeat) replayed once, within the budget, marked as a replay of its failure
    assert len(replays) == sum(len(v["replays"]) for v in verdicts.values()) <= 12
    assert len({(e["variant_id"], e["worker"], e["repeat"]) for e in replays}) == len(replays)
    assert all(e["origin"] == "replay" and e["parent_id"] in verdicts for e in replays)
    # their results are stored, not final, continuing their variant's attempts
    stored = [r for r in results if not r.final]
    assert sorted((r.variant_id, r.worker, r.outcome) for r in stored) == sorted(
        (r["variant_id"], r["worker"], r["outcome"]) for v in verdicts.values() for r in v["replays"])
    for variant_id in verdicts:
        attempts = sorted(r.attempt for r in stored if r.variant_id == variant_id)
        assert attempts == list(range(2, 2 + len(attempts)))
    assert {r.outcome for r in stored if r.worker == "gw0"} == {"passed"}
    assert {r.outcome for r in stored if r.worker == "gw1"} == {"failed"}
    assert "ENVIRONMENT-SPECIFIC" in ran.output and "fails with gw1, passes with gw0" in ran.output
    shown = run_cli(root, "show", "last", "--store", ran.store)
    assert "ENVIRONMENT-SPECIFIC" in shown.output and "fails with gw1, passes with gw0" in shown.output, shown.log
    analyzed = run_cli(root, "analyze", "last", "--store", ran.store)
    assert "ENVIRONMENT-SPECIFIC" in analyzed.output, analyzed.log
    assert "flaky:" not in analyzed.output  # failing on gw1 and passing on gw0 has a cause: not flaky
