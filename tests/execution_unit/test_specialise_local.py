"""The local actuator on real processes: affinity and niceness of a worker's whole process tree,
and cgroup v2 only where this machine allows it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from testfleet.execution.specialise_local import LocalActuator, cgroup_v2

# a "worker" with a child (its SUT): both must follow the worker's allocation
TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
       "time.sleep(60)"


@pytest.fixture
def workers() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs = {name: subprocess.Popen([sys.executable, "-c", TREE]) for name in ("gw0", "gw1")}
    try:
        for proc in procs.values():  # until each has started its child (bounded: 10 s)
            deadline = time.monotonic() + 10
            while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
                time.sleep(0.01)
        yield procs
    finally:
        for proc in procs.values():
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait()


def tree(pid: int) -> list[int]:
    return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]


needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to set apart")


@needs_two_cpus
def test_a_grant_sets_the_others_apart_and_lowers_them_and_a_release_undoes_it(workers) -> None:
    pids = {name: p.pid for name, p in workers.items()}
    assert len(tree(pids["gw1"])) == 2
    cpus = sorted(os.sched_getaffinity(0))
    nice_before = os.getpriority(os.PRIO_PROCESS, pids["gw1"])
    actuator = LocalActuator(nice=3, cgroup=False, cpus=cpus)
    done = actuator.grant({"gw0": pids["gw0"]}, {"gw1": pids["gw1"]})
    kept = cpus[:len(cpus) // 2]
    for pid in tree(pids["gw1"]):  # the other worker and its SUT lost the reserved CPUs
        assert not set(os.sched_getaffinity(pid)) & set(kept)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, nice_before + 3)
    for pid in tree(pids["gw0"]):  # the granted one keeps all, its priority untouched
        assert sorted(os.sched_getaffinity(pid)) == cpus
        assert os.getpriority(os.PRIO_PROCESS, pid) == nice_before
    assert any(line.startswith("affinity: CPU") and "gw0" in line for line in done), done
    assert any("gw1 lowered by 3" in line for line in done), done

    undone = actuator.release({"gw0": pids["gw0"]}, {}, {"gw1": pids["gw1"]})
    for pid in tree(pids["gw1"]):
        assert sorted(os.sched_getaffinity(pid)) == cpus
    # raising gw1 back needs privileges; without them gw0 is lowered as well: equal again
    after = {pid: os.getpriority(os.PRIO_PROCESS, pid) for name in pids for pid in tree(pids[name])}
    assert len(set(after.values())) == 1, (after, undone)
    assert any(line.startswith("nice:") for line in undone), undone


def test_cgroup_v2_is_used_only_where_writable_and_otherwise_skipped_with_the_reason(workers) -> None:
    here, why = cgroup_v2()
    actuator = LocalActuator(nice=0, affinity=False, cgroup=True)
    done = actuator.grant({"gw0": workers["gw0"].pid}, {"gw1": workers["gw1"].pid})
    if here is None:
        assert why and done == [f"cgroup: skipped, {why}"]
        pytest.skip(f"no writable cgroup v2 here: {why}")
    group = here / f"testfleet-{os.getpid()}-gw0"
    assert (group / "cpu.weight").read_text().strip() == "400", done
    assert str(workers["gw0"].pid) in (group / "cgroup.procs").read_text().split()


def test_cgroup_v2_detection_reads_the_hierarchy_it_is_given(tmp_path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/x\n0::/\n")
    assert cgroup_v2(tmp_path / "none", proc) == (None, f"no cgroup v2 hierarchy mounted at {tmp_path / 'none'}")
    root = tmp_path / "fs"
    (root / "unified").mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("\n")
    here, why = cgroup_v2(root, proc)
    assert here is None and "cgroup v1 controllers are mounted" in why and "offers no cpu controller" in why
    (root / "unified" / "cgroup.controllers").write_text("cpu memory\n")
    (root / "unified" / "cgroup.subtree_control").write_text("")
    proc.write_text("0::/\n")
    assert cgroup_v2(root, proc) == (root / "unified", "")
