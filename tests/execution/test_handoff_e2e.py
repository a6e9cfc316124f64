"""Hand-off in a real run: a test that hangs far past its recorded history gets a speculative copy
on the idle worker; the copy's result is the one kept, and the hung worker is cancelled."""

from __future__ import annotations

import pytest

from execution.conftest import by_nodeid, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

# Straggles after 3 x history or history + 0.5 s, whichever is later: about 0.5 s here.
HANDOFF = """
[handoff]
min_extra = 0.5
"""

# test_slow hangs on its first execution of an armed run (the mark "hung" is absent then, and it
# leaves it); any other execution, the speculative copy included, takes its usual 0.1 s.
SUITE = """
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent.parent


def test_slow():
    if (HERE / "armed").exists() and not (HERE / "hung").exists():
        (HERE / "hung").write_text("")
        time.sleep(60)  # far past its history: only a copy ends this test in time
    time.sleep(0.1)


@pytest.mark.parametrize("n", range(3))
def test_quick(n):
    pass
"""


def test_a_straggler_is_copied_on_the_idle_worker_and_the_first_result_alone_is_kept(suite) -> None:
    root = suite({"testfleet.toml": HANDOFF, "tests/test_work.py": SUITE})
    first = run_testfleet(root, workers=2)  # the history: test_slow takes about 0.1 s
    assert first.returncode == 0, first.log
    (root / "armed").write_text("")

    ran = run_testfleet(root, workers=2)
    assert ran.returncode == 0, ran.log
    assert (root / "hung").exists()  # the original did hang
    results = ran.results()
    attempts = by_nodeid(results)
    # exactly one result per case, each final: the cancelled original left none
    assert sorted(attempts) == ["tests/test_work.py::test_quick[0]", "tests/test_work.py::test_quick[1]",
                                "tests/test_work.py::test_quick[2]", "tests/test_work.py::test_slow"]
    assert all(len(rows) == 1 and rows[0].final and rows[0].outcome == "passed" for rows in attempts.values())
    slow = attempts["tests/test_work.py::test_slow"][0]
    assert slow.duration < 30  # the copy's run, not the hung one's

    with Store.open(ran.store, read_only=True) as store:
        events = TelemetryStore(store).events(ran.run().run_id, ["handoff"])
    started = [e for e in events if e["action"] == "start"]
    decided = [e for e in events if e["action"] == "result"]
    assert len(started) == 1 and len(decided) == 1, events
    result = decided[0]
    assert result["nodeid"] == slow.nodeid and result["winner_origin"] == "speculative"
    assert result["winner"] == result["copy"] == slow.worker  # the kept result is the copy's
    assert result["loser"] == result["original"] != slow.worker
    assert result["original_ran_s"] > 0.5
    assert "a speculative copy starts on" in ran.stdout, ran.log
    assert "1 straggler handed off; the copy won 1" in ran.stdout, ran.log
