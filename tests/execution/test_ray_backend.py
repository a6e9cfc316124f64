"""The Ray backend end to end: real ``testfleet run --backend ray`` runs on real Ray instances.

* A local instance that testfleet starts itself (no ``--ray-address``), and an address where
  nothing listens; these run first, before the cluster below exists.
* A module-scoped two-node cluster started with Ray's own ``ray start`` CLI: a head with 2 CPUs
  and a second node with 1 CPU, the custom resource ``special`` and the label ``zone=b``. On it:
  requirement routing, no ``--ray-address`` while ``$RAY_ADDRESS`` names a cluster, unmet
  requirements (skip / ``--strict-requirements``), an actor killed mid-run, and outcome parity
  with the local backend on ``examples/inventory``.

Network: everything stays on 127.0.0.1. Ray swaps 127.0.0.1 (given as ``--node-ip-address`` or
in an address) for the machine's outward IP unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, its
switch for single-machine clusters, is set; :func:`ray_env` sets it for every Ray process and
every testfleet run here, and the fixture checks that each node registered as 127.0.0.1. Ray's
CLI refuses to add a second node with that switch off, so the second node is started through the
same CLI entry point with only that check lifted (:data:`RAY_CLI`).

Every Ray process of this module lives under its own short ``/tmp/tfr-*`` temp dir (Unix socket
paths must stay short) with a private auth token. Teardown ends exactly those processes (the
ones whose command line names that dir, and their children), not every Ray process on the
machine as ``ray stop --force`` would, and checks that none is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from execution.conftest import (
    TIMEOUT,
    by_nodeid,
    clean_env,
    make_suite,
    outcome_counts,
    run_testfleet,
)
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'testfleet[test]'")

# under xdist this file shares a worker with the other heavy one (tests/conftest.py: HEAVY)
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from backends import processes_under  # noqa: E402
INVENTORY = REPO / "examples" / "inventory"
NODE_WAIT = 90.0
"""Seconds the cluster may take to show both nodes alive."""

RAY_CLI = r"""
import sys, types
import ray.scripts.scripts as cli
# `ray start --address` (a second node) is refused while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
# which is what keeps Ray on 127.0.0.1; lift that one check, for this command only.
constants = getattr(cli, "ray_constants", None)
if constants is not None and not getattr(constants, "ENABLE_RAY_CLUSTER", True):
    gate = types.ModuleType(constants.__name__)
    gate.__dict__.update(vars(constants))
    gate.ENABLE_RAY_CLUSTER = True
    cli.ray_constants = gate
sys.argv[0] = "ray"
sys.exit(cli.main())
"""
"""``python -c RAY_CLI start ...`` is ``ray start ...`` with this interpreter's Ray."""

NODES = r"""
import json, logging, sys
import ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
print(json.dumps([{"id": n["NodeID"], "alive": n["Alive"], "ip": n["NodeManagerAddress"],
                   "resources": n["Resources"], "labels": n.get("Labels") or {}} for n in ray.nodes()]))
"""
"""A short-lived driver that prints the cluster's nodes as JSON."""


# ---------------------------------------------------------------------------------- helpers


def ray_env(tmp: Path) -> dict[str, str]:
    """Environment of every Ray process and testfleet run: loopback only, private temp dir
    (``ray.init()`` without an address then finds no other instance to join) and token."""
    env = clean_env({
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1: see the module docstring
        "RAY_TMPDIR": str(tmp),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp / "auth_token"),
    })
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):
        env.pop(name, None)
    return env


def new_ray_tmp() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="tfr-", dir="/tmp"))
    (tmp / "auth_token").write_text(secrets.token_hex(32))
    return tmp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_processes(tmp: Path) -> dict[int, str]:
    """Live processes started under ``tmp`` (and their descendants: Ray's workers rename
    themselves); the same walk the backend benchmark uses to clean up after itself."""
    return processes_under(tmp)


def end_ray_processes(tmp: Path) -> dict[int, str]:
    """SIGTERM, then SIGKILL after 2 s, every process of :func:`ray_processes`; return survivors."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        for pid in ray_processes(tmp):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while ray_processes(tmp) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not ray_processes(tmp):
            break
    return ray_processes(tmp)


def ray_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", RAY_CLI, *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`ray {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return proc


def cluster_nodes(address: str, env: dict[str, str]) -> list[dict[str, object]]:
    proc = subprocess.run([sys.executable, "-c", NODES, address], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        return []
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    head_id: str
    special_id: str  # the node with the resource "special" and the label zone=b


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A private Ray temp dir for one test's own Ray instance; nothing of it may outlive the test."""
    tmp = new_ray_tmp()
    try:
        yield tmp
    finally:
        left = end_ray_processes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, f"Ray processes outlived the test: {left}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    tmp = new_ray_tmp()
    env = ray_env(tmp)
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-gpus", "0", "--object-store-memory", str(100 * 2**20),
              "--disable-usage-stats", "--temp-dir", str(tmp)]
    try:
        ray_cli(env, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
                *common)
        ray_cli(env, "start", "--address", address, "--num-cpus", "1", "--resources", json.dumps({"special": 1}),
                "--labels", "zone=b", *common)
        deadline = time.monotonic() + NODE_WAIT
        nodes: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            nodes = [n for n in cluster_nodes(address, env) if n["alive"]]
            if len(nodes) == 2:
                break
            time.sleep(0.5)  # polling interval of the bounded wait
        assert len(nodes) == 2, f"the cluster did not show 2 alive nodes within {NODE_WAIT}s: {nodes}"
        assert {n["ip"] for n in nodes} == {"127.0.0.1"}, f"a node left loopback: {nodes}"
        special = [n for n in nodes if "special" in n["resources"]]  # type: ignore[operator]
        assert len(special) == 1 and special[0]["labels"].get("zone") == "b", nodes  # type: ignore[union-attr]
        head = [n for n in nodes if n is not special[0]]
        yield Cluster(address, env, str(head[0]["id"]), str(special[0]["id"]))
    finally:
        left = end_ray_processes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes of the cluster survived teardown: {left}"


# A test calls where(name): it records, in PLACES/name.json, the worker and the Ray node it ran on.
WHERE = """
import json
import os

import pytest

PLACES = @PLACES@


def where(name):
    import ray
    import ray.util

    node_id = ray.get_runtime_context().get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == node_id)
    record = {"worker": os.environ.get("TESTFLEET_WORKER"), "node": node_id, "ip": ray.util.get_node_ip_address(),
              "resources": node["Resources"], "labels": node.get("Labels") or {}, "pid": os.getpid()}
    with open(os.path.join(PLACES, name + ".json"), "w") as fh:
        json.dump(record, fh)
"""


def places_source(places: Path) -> str:
    places.mkdir(parents=True, exist_ok=True)
    return WHERE.replace("@PLACES@", repr(str(places)))


def passing(prefix: str, count: int) -> str:
    return "".join(f"def test_{prefix}_{i}():\n    pass\n\n\n" for i in range(count))


def read_places(places: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(places.glob("*.json"))}


# ------------------------------------------------------- no cluster: testfleet's own Ray instance


def test_without_an_address_testfleet_starts_and_stops_its_own_ray_instance(tmp_path: Path, ray_tmp: Path) -> None:
    places = tmp_path / "places"
    root = make_suite(tmp_path / "suite", {
        "tests/test_tiny.py": places_source(places) + """

def test_one():
    where("one")


def test_two():
    where("two")


def test_three():
    where("three")
""",
    })
    ran = run_testfleet(root, "tests", "--backend", "ray", env=ray_env(ray_tmp))
    assert ran.returncode == 0, ran.log
    assert outcome_counts(ran.output) == {"passed": 3}, ran.log
    assert ran.run().backend == "ray"
    seen = read_places(places)
    assert sorted(seen) == ["one", "three", "two"], ran.log
    for record in seen.values():
        assert record["ip"] == "127.0.0.1", record  # the instance stayed on loopback
        assert record["pid"] != os.getpid() and record["worker"], record
    # testfleet shut its instance down: no process of it is left (zombies aside)
    assert not ray_processes(ray_tmp), ray_processes(ray_tmp)


def test_an_address_where_nothing_listens_is_a_usage_error(tmp_path: Path, ray_tmp: Path) -> None:
    root = make_suite(tmp_path / "suite", {"tests/test_a.py": "def test_a():\n    pass\n"})
    started = time.monotonic()
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", "127.0.0.1:1", env=ray_env(ray_tmp),
                        timeout=120)
    assert ran.returncode == 4, ran.log
    assert "ERROR" in ran.stderr and "127.0.0.1:1" in ran.stderr, ran.log
    assert not (root / "s.duckdb").exists(), "the store is not touched when the backend cannot start"
    assert time.monotonic() - started < 120


# ------------------------------------------------------------------- the two-node cluster


def test_requirements_route_tests_to_the_node_that_offers_them(cluster: Cluster, tmp_path: Path) -> None:
    places = tmp_path / "places"
    root = make_suite(tmp_path / "suite", {
        "tests/test_placed.py": places_source(places) + """

@pytest.mark.requires(resources={"special": 1})
def test_special():
    where("special")


@pytest.mark.requires(labels={"zone": "b"})
def test_zone_b():
    where("zone_b")


def test_plain_0():
    where("plain_0")


def test_plain_1():
    where("plain_1")


def test_plain_2():
    where("plain_2")


def test_plain_3():
    where("plain_3")
""",
    })
    ran = run_testfleet(root, "tests", "-v", "--backend", "ray", "--ray-address", cluster.address, env=cluster.env)
    assert ran.returncode == 0, ran.log
    assert outcome_counts(ran.output) == {"passed": 6}, ran.log
    seen = read_places(places)
    assert sorted(seen) == ["plain_0", "plain_1", "plain_2", "plain_3", "special", "zone_b"], ran.log
    for name in ("special", "zone_b"):
        record = seen[name]
        assert record["node"] == cluster.special_id, (name, record)
        assert "special" in record["resources"] and record["labels"].get("zone") == "b", (name, record)
    plain_workers = {seen[f"plain_{i}"]["worker"] for i in range(4)}
    # one actor per distinct set of requirements, none of them a default worker
    assert len({seen["special"]["worker"], seen["zone_b"]["worker"]} | plain_workers) == len(plain_workers) + 2, seen
    assert {r["ip"] for r in seen.values()} == {"127.0.0.1"}, seen
    by_test = {r.nodeid.rsplit("::", 1)[1]: r for r in ran.results(final_only=True)}
    assert by_test["test_special"].worker == seen["special"]["worker"], by_test["test_special"]


def test_without_an_address_a_running_cluster_named_by_ray_address_does_not_break_the_run(
        cluster: Cluster, tmp_path: Path) -> None:
    # Ray's own ray.init() joins the cluster that $RAY_ADDRESS (or the last `ray start` on this
    # machine) names when it is given no address. Whether testfleet then joins it or starts its
    # own instance, the run must work.
    root = make_suite(tmp_path / "suite", {"tests/test_a.py": passing("a", 3)})
    ran = run_testfleet(root, "tests", "--backend", "ray", env=cluster.env | {"RAY_ADDRESS": cluster.address})
    assert ran.returncode == 0, ran.log
    assert outcome_counts(ran.output) == {"passed": 3}, ran.log


UNMET = """
import pytest


@pytest.mark.requires(resources={"nothere": 1})
def test_needs_nothere():
    pass


@pytest.mark.requires(gpus=1)
def test_needs_a_gpu():
    pass


def test_plain_0():
    pass


def test_plain_1():
    pass
"""


def test_a_requirement_no_node_offers_is_skipped_or_with_strict_an_error(cluster: Cluster, tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {"tests/test_unmet.py": UNMET})
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address, env=cluster.env)
    assert ran.returncode == 0, ran.log
    assert outcome_counts(ran.output) == {"passed": 2, "skipped": 2}, ran.log
    final = {r.nodeid.rsplit("::", 1)[1]: r for r in ran.results(final_only=True)}
    assert final["test_needs_nothere"].outcome == "skipped" and "nothere" in final["test_needs_nothere"].message, \
        final["test_needs_nothere"]
    assert final["test_needs_a_gpu"].outcome == "skipped" and "gpus" in final["test_needs_a_gpu"].message, \
        final["test_needs_a_gpu"]

    strict = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address,
                           "--strict-requirements", env=cluster.env, store=tmp_path / "strict.duckdb")
    assert strict.returncode == 1, strict.log
    assert outcome_counts(strict.output) == {"passed": 2, "error": 2}, strict.log
    final = {r.nodeid.rsplit("::", 1)[1]: r for r in strict.results(final_only=True)}
    assert final["test_needs_nothere"].outcome == "error" and "nothere" in final["test_needs_nothere"].message
    assert final["test_needs_a_gpu"].outcome == "error" and "gpus" in final["test_needs_a_gpu"].message


def test_an_actor_killed_mid_run_leaves_a_complete_duplicate_free_run(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    killer = f"""
import os
import signal

MARKER = {str(marker)!r}


def test_kills_its_actor():
    if not os.path.exists(MARKER):
        open(MARKER, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # the whole actor process, as the OOM killer would


"""
    root = make_suite(tmp_path / "suite", {
        "tests/test_a.py": passing("a", 7),
        "tests/test_b.py": killer + passing("b", 7),
        "tests/test_c.py": passing("c", 7),
    })
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address, env=cluster.env)
    assert marker.exists(), ran.log
    assert ran.returncode == 0, ran.log
    counts = outcome_counts(ran.output)
    assert counts.get("passed") == 22 and not {"failed", "error", "crashed"} & set(counts), ran.log
    run_id = ran.run().run_id
    with Store.open(ran.store, read_only=True) as store:
        final = store.results(run_id, final_only=True)
        every = store.results(run_id)
    assert len(final) == 22, [r.nodeid for r in final]
    duplicates = [n for n, c in Counter(r.nodeid for r in final).items() if c > 1]
    assert not duplicates, duplicates
    assert all(r.outcome == "passed" for r in final), [(r.nodeid, r.outcome) for r in final if r.outcome != "passed"]
    attempts = by_nodeid(every)
    killed = attempts.pop("tests/test_b.py::test_kills_its_actor")
    assert [(r.attempt, r.outcome, r.final) for r in killed] == [(1, "crashed", False), (2, "passed", True)], killed
    assert killed[0].worker != killed[1].worker, killed  # the second attempt ran on a live actor
    assert all(len(tries) == 1 for tries in attempts.values()), {n: len(t) for n, t in attempts.items()}


def test_outcome_counts_equal_the_local_backends_on_the_example_suite(cluster: Cluster, tmp_path: Path) -> None:
    # A copy, so that neither the repository's files ship with the Ray job nor its reports land there.
    shutil.copytree(INVENTORY, tmp_path / "inventory",
                    ignore=shutil.ignore_patterns("__pycache__", ".testfleet", ".hypothesis", ".pytest_cache"))
    on_ray = run_testfleet(tmp_path, "inventory", "--backend", "ray", "--ray-address", cluster.address,
                           env=cluster.env, store=tmp_path / "ray.duckdb")
    local = run_testfleet(tmp_path, "inventory", "--backend", "local", env=cluster.env,
                          store=tmp_path / "local.duckdb")
    expected = {"passed": 67, "skipped": 1, "xfailed": 1}  # 65 tests and 2 HTTP scenarios
    assert local.returncode == 0 and outcome_counts(local.output) == expected, local.log
    assert on_ray.returncode == 0, on_ray.log
    assert outcome_counts(on_ray.output) == outcome_counts(local.output), on_ray.log
    assert on_ray.run().backend == "ray" and local.run().backend == "local"
    ray_final = {r.nodeid: r.outcome for r in on_ray.results(final_only=True)}
    local_final = {r.nodeid: r.outcome for r in local.results(final_only=True)}
    assert ray_final == local_final


EXPLORED = """
import testfleet
from testfleet import Int


@testfleet.explore(size=Int(0, 10000))
def test_size(size):
    assert size < 9000, "too big"
"""
RULES = """
rules:
  - mutation_name: Bigger
    target_parameter: size
    variation_type: set
    values: [9001]  # a value no other source is likely to propose first
    trigger_condition: "worker.rss_mb > 1"
"""


def test_exploration_on_ray_proposes_from_the_actors_engines(cluster: Cluster, tmp_path: Path) -> None:
    # the ruleset reaches the actors as a message (no file on the nodes); their engines propose.
    # A fixed seed: which source the allocation draws first is seeded, and the rule must get a turn
    root = make_suite(tmp_path / "suite", {"tests/test_x.py": EXPLORED, "rules.yaml": RULES})
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address,
                        "--explore", "16", "--seed", "1", "--ruleset", "rules.yaml", env=cluster.env)
    assert ran.returncode == 1 and "too big" in ran.stdout, ran.log
    with Store.open(ran.store, read_only=True) as store:
        run_id = store.get_run("last").run_id
        workers = {w for (w,) in store.query("SELECT DISTINCT worker FROM results WHERE run_id = $1", [run_id])}
        rows = store.query("SELECT v.origin FROM results r JOIN variants v USING (variant_id) "
                           "WHERE r.run_id = $1 AND r.final AND v.origin NOT IN ('baseline', 'minimize')",
                           [run_id])
        events = TelemetryStore(store).events(run_id, kinds=("variant",))
    assert len(rows) == 16  # the budget, exactly
    fired = [e for e in events if e["origin"] == "rule:Bigger"]
    assert fired and fired[0]["trigger_values"]["worker.rss_mb"] > 1, ran.log
    assert fired[0]["proposed_by"] in workers  # an actor that ran the parent proposed it


# test_reader waits (bounded) until the bus actor of its run holds a replay, then keeps what it read
BUS_READER = """
import json
import time

SEEN = @SEEN@


def test_broken():
    assert 1 + 1 == 3


def test_reader():
    from testfleet.execution.bus_relay import read_bus

    deadline = time.monotonic() + 60
    rows = read_bus()
    while time.monotonic() < deadline and not any(r["kind"] == "replay" for r in rows):
        time.sleep(0.2)
        rows = read_bus()
    with open(SEEN, "w") as fh:
        json.dump(rows, fh)
"""


def test_the_bus_messages_reach_the_runs_actor_where_its_tests_read_them_live(cluster: Cluster,
                                                                              tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    root = make_suite(tmp_path / "suite", {"tests/test_bus.py": BUS_READER.replace("@SEEN@", repr(str(seen)))})
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address,
                        "--replicate-budget", "2", "--seed", "2", env=cluster.env)
    assert ran.returncode == 1, ran.log
    live = json.loads(seen.read_text())
    with Store.open(ran.store, read_only=True) as store:
        stored = [e for e in TelemetryStore(store).events(ran.run().run_id) if "bus_seq" in e]
    stored.sort(key=lambda e: e["bus_seq"])
    # a test of the run read, while the run went on, the bus's messages so far: the store's, in its order
    assert any(r["kind"] == "replay" for r in live), (live, ran.log)
    assert [(r["bus_seq"], r["kind"], r["message"]) for r in live] == [
        (e["bus_seq"], e["kind"], e["message"]) for e in stored[:len(live)]]
    assert stored[-1]["kind"] == "replication"  # the verdict came after the replays, once they were back


# x >= 60 keeps 40 MB more in the worker and fails: memory growth and failures in the same
# executions (as tests/execution/test_specialise_e2e.py), so the one worker's instance is granted.
# Each execution takes a quarter of a second: the explored work left after the grant (over 8 s on
# one worker) outlasts a new actor's start, so the specialist gets some of it.
LOADED = """
import time

import testfleet
from testfleet import Int

KEPT = []


@testfleet.explore(x=Int(0, 99))
def test_load(x):
    time.sleep(0.25)
    if x >= 60:
        KEPT.append(bytearray(40 * 2**20))
        raise AssertionError(f"broken under load at x={x}")
"""


def test_a_grant_on_ray_starts_a_worker_actor_with_its_own_cpu_reservation(cluster: Cluster,
                                                                           tmp_path: Path) -> None:
    # one worker holds 1 of the cluster's 3 CPUs; the grant's specialist reserves 1 more beside it
    root = make_suite(tmp_path / "suite", {"tests/test_load.py": LOADED})
    (root / "testfleet.toml").write_text("[specialise]\nenabled = true\nwindow = 4\nray_cpus = 1\n")
    ran = run_testfleet(root, "tests", "--backend", "ray", "--ray-address", cluster.address, "--explore", "40",
                        "--seed", "5", "--replicate-budget", "0", workers=1, env=cluster.env)
    assert ran.returncode == 1, ran.log
    with Store.open(ran.store, read_only=True) as store:
        run_id = store.get_run("last").run_id
        events = TelemetryStore(store).events(run_id, ["allocation"])
        ran_on = Counter(w for (w,) in store.query("SELECT worker FROM results WHERE run_id = $1", [run_id]))
    grants = [e for e in events if e["action"] == "grant"]
    assert grants, (events, ran.log)
    started = [line for line in grants[0]["done"] if line.startswith("ray: started ")]
    assert len(started) == 1 and "reserving 1 CPU(s) of the 2 free beside gw0" in started[0], grants[0]
    specialist = started[0].split()[2].rstrip(",")
    assert specialist != "gw0" and ran_on[specialist] >= 1, (ran_on, ran.log)  # it took tests
    assert not [e for e in events if e["action"] == "skip" and e["subject"] == "ray"], events
    # every grant is given back, at the latest when exploration is over: the specialist stops
    releases = [e for e in events if e["action"] == "release"]
    assert len(releases) == len(grants), events
    assert any(f"ray: {specialist} stops after its current test" in line for e in releases for line in e["done"])
