"""Ray-node quarantine on a real two-node Ray cluster (the module-scoped cluster of
test_ray_backend.py: a head with 2 CPUs, a second node with 1 CPU).

* The backend itself: a node it excludes gets no new actor (the head excluded, an actor made next
  lands on the other node, though Ray places a driver's first actor on the driver's own node when
  it can), and the last node that could take an actor is never excluded.
* A real ``testfleet run --workers 3``: three one-CPU workers fill both nodes' CPUs, so one worker
  is on the second node. Every test there fails with a refused connection (an infrastructure
  error); with ``consecutive_errors = 1`` and ``quarantine_after = 2`` its seat's breaker opens,
  probes with a fresh worker (which Ray can only place there), and opens again: the node is
  quarantined, with an event naming it. A test then crashes one head worker (once, after reading
  that event on the run's bus): it is replaced (level 4) after the quarantine, and no worker comes
  up on the quarantined node, although its CPU is free by then. Every test passes in the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from execution.conftest import TIMEOUT, make_suite, run_testfleet
from execution import test_ray_backend
from execution.test_ray_backend import Cluster, places_source, read_places
from testfleet.execution.recovery import NODE_ACTION
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'testfleet[test]'")

pytestmark = pytest.mark.slow

two_node_cluster = test_ray_backend.cluster  # the module-scoped cluster fixture, under this module's name

BACKEND = r"""
import json, sys, time
from testfleet.execution.backends.base import HelloEvent
from testfleet.execution.backends.ray import RayBackend

address, suite, head, other = sys.argv[1:5]
backend = RayBackend(["-q", "-p", "no:cacheprovider", "tests"], workers=1, address=address, cwd=suite)
out = {}
try:
    backend.start()
    out["exclude_head"] = backend.exclude_node(head)
    out["exclude_last"] = backend.exclude_node(other)  # refused: no node would be left
    backend.spawn_worker("gw0")
    deadline = time.monotonic() + 120  # a hang guard: an actor that can be placed says hello in seconds
    while time.monotonic() < deadline and not any(isinstance(e, HelloEvent) for e in backend.poll(1.0)):
        pass
    out["node"] = backend.node_of("gw0")
finally:
    backend.close()
print(json.dumps(out))
"""


def test_an_excluded_node_gets_no_new_actor_and_the_last_node_stays(tmp_path: Path, two_node_cluster: Cluster) -> None:
    cluster = two_node_cluster
    suite = make_suite(tmp_path / "suite", {"tests/test_a.py": "def test_a():\n    pass\n"})
    proc = subprocess.run([sys.executable, "-c", BACKEND, cluster.address, str(suite), cluster.head_id,
                           cluster.special_id], env=cluster.env, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["exclude_head"] is None
    assert out["exclude_last"] == "it is the last node of the cluster a worker could be placed on"
    assert out["node"] == cluster.special_id, out


SUITE = """

import os
import time

import pytest

BAD = @BAD@
N = 40


def _node():
    import ray

    return ray.get_runtime_context().get_node_id()


def _wait_for_quarantine():
    from testfleet.execution.bus_relay import read_bus

    deadline = time.monotonic() + 120  # a hang guard: the quarantine comes within seconds
    while not any(r.get("action") == "@ACTION@" for r in read_bus()):
        assert time.monotonic() < deadline, "the node was never quarantined"
        time.sleep(0.2)  # polling interval of the bounded wait for the coordinator's event


# first: it runs while work is still queued, so that its worker's replacement is wanted
def test_crash_a_head_worker_once_the_node_is_quarantined():
    if _node() == BAD:
        raise ConnectionRefusedError("[Errno 111] Connection refused (on the bad node)")
    marker = os.path.join(PLACES, "crashed")
    if os.path.exists(marker):  # the retry, on another worker
        where("crash_retry")
        return
    _wait_for_quarantine()
    with open(marker, "w") as fh:
        fh.write(str(time.time()))
    where("crash")
    os._exit(1)


@pytest.mark.parametrize("n", range(N))
def test_work(n):
    # the head's workers hold their tests until the bad node is quarantined, so that work is
    # still queued when its seat probes
    if _node() == BAD:
        raise ConnectionRefusedError("[Errno 111] Connection refused (on the bad node)")
    _wait_for_quarantine()
    time.sleep(0.3)
    where(f"work_{n}")
"""


def test_a_node_whose_seats_keep_opening_breakers_gets_no_new_worker(tmp_path: Path, two_node_cluster: Cluster) -> None:
    cluster = two_node_cluster
    places = tmp_path / "places"
    source = places_source(places) + SUITE.replace("@BAD@", repr(cluster.special_id)).replace("@ACTION@", NODE_ACTION)
    root = make_suite(tmp_path / "suite", {
        "tests/test_node.py": source,
        "pyproject.toml": "[tool.testfleet.breakers]\nconsecutive_errors = 1\ncooldown = 0.5\nquarantine_after = 2\n",
    })
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address, workers=3,
                        env=cluster.env)
    assert ran.returncode == 0, ran.log  # every test passed in the end, off the bad node
    store = Store.open(ran.store, read_only=True)
    try:
        run_id = store.query("SELECT run_id FROM runs")[0][0]
        recovery = TelemetryStore(store).events(run_id, kinds=["recovery"])
        breakers = TelemetryStore(store).events(run_id, kinds=["breaker"])
    finally:
        store.close()
    (node,) = [e for e in recovery if e["action"] == NODE_ACTION]
    assert node["level"] == 5 and node["target"] == f"node {cluster.special_id}", node
    assert "breakers of its seats opened 2 times" in node["reason"] and "quarantine_after = 2" in node["reason"]
    assert "LEVEL 5 quarantine the Ray node" in ran.stdout, ran.log

    # the bad node's seat opened, probed with a fresh worker there (its only free CPU), and opened again
    seat = breakers[0]["target"]
    assert [e["to"] for e in breakers if e["target"] == seat] == ["open", "half_open", "open"], breakers
    # the crash opened the head seat's breaker; a fresh worker took the seat after the quarantine
    # and its probe passed, so it ran on the head (every test fails on the quarantined node),
    # though the quarantined node's CPU was free by then
    crashed = read_places(places)["crash"]
    assert crashed["node"] == cluster.head_id and crashed["worker"] != seat
    after = [e for e in breakers + recovery if e["bus_seq"] > node["bus_seq"] and e.get("target") == crashed["worker"]]
    assert [(e["kind"], e.get("to") or e["level"]) for e in sorted(after, key=lambda e: e["bus_seq"])][-3:] == [
        ("breaker", "half_open"), ("recovery", 4), ("breaker", "closed")], after
    assert "came up on quarantined node" not in ran.output, ran.log
    # no test passed on the quarantined node; the crashed test passed on its retry elsewhere
    seen = read_places(places)
    assert all(r["node"] == cluster.head_id for r in seen.values()), seen
    assert seen["crash_retry"]["worker"] != crashed["worker"], seen
