"""Specialisation in a real explored run: a worker whose failing explored executions also load it
gets a grant, stored as an ``allocation`` event with its reason, and gives it back at the end."""

from __future__ import annotations

import pytest

from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

# x >= 6 keeps 40 MB more in the worker and fails: memory growth (a stress that does not depend
# on how busy the machine is) and failures in the same executions
LOADED = """
import testfleet
from testfleet import Int

KEPT = []


@testfleet.explore(x=Int(0, 9))
def test_load(x):
    if x >= 6:
        KEPT.append(bytearray(40 * 2**20))
        raise AssertionError(f"broken under load at x={x}")
"""


def test_a_stressed_failing_worker_is_granted_and_the_event_says_why(suite) -> None:
    from execution.conftest import run_testfleet

    root = suite({"tests/test_load.py": LOADED})
    (root / "testfleet.toml").write_text("[specialise]\nenabled = true\nwindow = 4\n")
    ran = run_testfleet(root, "--explore", "12", "--seed", "5", "--replicate-budget", "0", workers=1)
    assert ran.returncode == 1, ran.log
    with Store.open(ran.store, read_only=True) as store:
        events = TelemetryStore(store).events(store.get_run("last").run_id, ["allocation"])
    grants = [e for e in events if e["action"] == "grant"]
    assert grants, (events, ran.log)
    grant = grants[0]
    assert grant["subject"] == "gw0" and grant["bus_seq"] >= 1
    # the reason: the score, the rule that fired, and what was done (or skipped, and why)
    assert "stress" in grant["message"] and "yield" in grant["message"], grant
    assert "held at or above grant" in grant["message"] and grant["score"] >= 0.3
    assert any(line.startswith(("affinity:", "nice:")) for line in grant["done"]), grant
    skips = {e["subject"]: e["message"] for e in events if e["action"] == "skip"}
    assert all(why for why in skips.values())
    # every grant is given back, at the latest when exploration is over
    assert sum(e["action"] == "release" for e in events) == len(grants), events
