"""Breakers and escalating recovery in a real run: a seat of the fleet whose workers crash on
every test is opened, probed, quarantined, and its tests get their verdict on the other seat."""

from __future__ import annotations

import pytest

from execution.conftest import by_nodeid, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

BREAKERS = """
[breakers]
consecutive_errors = 2
cooldown = 0.5
quarantine_after = 2
"""

# Every worker but gw0 (gw1 and each worker that takes its seat: gw2, gw3...) dies on any test
# it runs, leaving a mark. gw0's first test waits for three marks, so the second seat crashes
# three times (open, probe, quarantine) while work is still queued.
CRASHING_SEAT = """
import os
import time
from pathlib import Path

import pytest

MARKS = Path(__file__).parent.parent / "crashes"


@pytest.mark.parametrize("n", range(20))
def test_work(n):
    worker = os.environ["TESTFLEET_WORKER"]
    if worker != "gw0":
        MARKS.mkdir(exist_ok=True)
        (MARKS / f"{worker}-{n}").write_text("")
        os._exit(7)
    deadline = time.monotonic() + 60
    while len(list(MARKS.glob("*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def test_a_seat_that_keeps_crashing_is_opened_probed_and_quarantined_and_no_verdict_is_lost(suite) -> None:
    root = suite({"testfleet.toml": BREAKERS, "tests/test_work.py": CRASHING_SEAT})
    ran = run_testfleet(root, workers=2)
    assert ran.returncode == 0, ran.log
    results = ran.results()
    attempts = by_nodeid(results)
    assert len(attempts) == 20
    # every test has its right verdict: passed, on gw0, once
    final = [r for r in results if r.final]
    assert sorted(r.nodeid for r in final) == sorted(attempts) and {r.outcome for r in final} == {"passed"}
    assert {r.worker for r in final} == {"gw0"}
    crashed = [r for r in results if r.outcome == "crashed"]
    assert len(crashed) == 3, ran.log  # gw1, its replacement, and the probe: no more
    assert {r.worker for r in crashed} == {"gw1", "gw2", "gw3"} and not any(r.final for r in crashed)

    with Store.open(ran.store, read_only=True) as store:
        events = TelemetryStore(store).events(ran.run().run_id, ["breaker", "recovery"])
    breaker = [(e["scope"], e["target"], e["from"], e["to"]) for e in events if e["kind"] == "breaker"]
    assert breaker == [("worker", "gw1", "closed", "open"), ("worker", "gw1", "open", "half_open"),
                       ("worker", "gw1", "half_open", "open")], events
    opened = next(e for e in events if e["kind"] == "breaker")
    assert opened["moved"] >= 1 and opened["reason"].startswith("2 crashes in ")  # gw2's queue moved
    levels = [(e["level"], e["target"]) for e in events if e["kind"] == "recovery"]
    assert levels.count((5, "gw1")) == 1 and (4, "gw1") in levels
    assert sum(1 for level, _ in levels if level == 2) == 3  # each crashed test retried elsewhere
    assert not any(level == 6 for level, _ in levels)
    # the console said it as it happened, and the summary lists it
    assert "worker gw1: breaker open after 2 crashes in" in ran.stdout, ran.log
    assert "circuit breakers and recovery" in ran.stdout and "LEVEL 5 quarantine the worker gw1" in ran.stdout


def test_a_bad_breaker_setting_is_refused_with_file_and_key(suite) -> None:
    root = suite({"testfleet.toml": "[breakers]\nfailure_ratio = 1.5\n",
                  "tests/test_a.py": "def test_a():\n    pass\n"})
    ran = run_testfleet(root)
    assert ran.returncode == 4, ran.log
    assert "testfleet.toml" in ran.stderr + ran.stdout and "breakers.failure_ratio" in ran.output, ran.log
