"""``testfleet show RUN --events`` after a real run whose failure was replicated: the replays and
the verdict, published on the coordinator's bus, come back from the store as a timeline."""

from __future__ import annotations

import re

import pytest

from execution.conftest import run_cli, run_testfleet
from testfleet.cli.history import show_run
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

SUITE = """
def test_broken():
    assert 1 + 1 == 3, "arithmetic is broken"


def test_fine():
    pass
"""

LINE = re.compile(r"^\s*\+(?P<offset>\d+\.\d\d)s\s+(?P<what>\S+)\s+(?P<subject>\S+)\s+(?P<message>.+)$")


def test_the_replays_and_the_verdict_of_a_run_are_shown_as_a_timeline_in_bus_order(suite, capsys) -> None:
    root = suite({"tests/test_broken.py": SUITE})
    ran = run_testfleet(root, "--replicate-budget", "3", "--seed", "5")
    assert ran.returncode == 1, ran.log
    with Store.open(ran.store, read_only=True) as store:
        run = store.get_run("last")
        stored = TelemetryStore(store).events(run.run_id, ["replay", "replication"])
    assert stored and all(isinstance(e.get("bus_seq"), int) for e in stored), stored

    shown = run_cli(root, "show", run.run_id[:8], "--events", "--store", ran.store)
    assert shown.returncode == 0, shown.log
    head, *body = shown.stdout.strip().splitlines()
    assert head.startswith(f"run {run.run_id}")
    lines = [LINE.match(line) for line in body]
    assert all(lines), shown.stdout
    parsed = [m.groupdict() for m in lines if m]
    # every replay, then the verdict they led to, in the order the bus published them
    nodeid = "tests/test_broken.py::test_broken"
    replays = [p for p in parsed if p["what"] == "replay/queue"]
    assert len(replays) == sum(e["kind"] == "replay" for e in stored) >= 1
    assert all(p["subject"] == nodeid and p["message"].startswith("replay of ") for p in replays)
    assert parsed[-1]["what"] == "replication/verdict" and parsed[-1]["subject"] == nodeid
    assert "deterministic: failed all" in parsed[-1]["message"]
    offsets = [float(p["offset"]) for p in parsed]
    assert offsets == sorted(offsets) and offsets[-1] <= run.duration + 1.0

    # the same command in this process (a CLI start each costs a second of CPU): one kind; no such run
    assert show_run("last", str(ran.store), events=True, kinds=("replication",)) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.strip().splitlines()[1:]] == ["replication/verdict"], out
    assert show_run("nosuchrun", str(ran.store), events=True) == 2
    missing = capsys.readouterr()
    assert "nosuchrun" in missing.err and missing.out == ""
