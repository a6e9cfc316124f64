"""Helpers on anomaly against a real SUT process: the coordinator's probing part, told of an
anomaly on a worker, profiles the SUT with py-spy, dumps its threads and reads tracemalloc
through testfleet's sitecustomize; the artefacts name the functions planted in the SUT."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from testfleet.execution.bus import Bus
from testfleet.execution.coordinator.probing import HelperMessage, Probing
from testfleet.execution.probes.settings import HelperPlan, HelperSettings, pyspy_path
from testfleet.execution.protocol import TestResult, WorkerConfig
from testfleet.execution.sut import SutInstance, SutSpec

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="py-spy and /proc: Linux only")]

SUT = '''
import time

kept = []


def planted_hot_checksum(rounds):
    total = 0
    for i in range(rounds):
        total = (total * 31 + i) % 1_000_003
    return total


def planted_leak():
    kept.append(bytearray(20_000))


print("up", flush=True)
while True:
    planted_hot_checksum(30_000)
    planted_leak()
'''
LEAK_LINE = SUT.lstrip("\n").splitlines().index("    kept.append(bytearray(20_000))") + 1
ANOMALY = {"kind": "outlier", "metric": "sut.cpu_percent", "nodeid": "tests/test_x.py::test_x",
           "message": "sut.cpu_percent 98 vs baseline 3 (robust z 40.0)"}


def test_helpers_attach_on_an_anomaly_and_name_the_planted_functions(tmp_path: Path) -> None:
    if pyspy_path() is None:
        pytest.skip("py-spy is not installed (pip install 'testfleet[profile]')")
    script = tmp_path / "sut_app.py"
    script.write_text(SUT.lstrip("\n"))
    spec = SutSpec(command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", ready={"log": "^up$"},
                   start_timeout=10, grace=1.0)
    host = SimpleNamespace(plan=SimpleNamespace(worker=WorkerConfig(sut=spec)), bus=Bus(),
                           recording=SimpleNamespace(anomalies=[]))
    settings = HelperSettings(enabled=["profile", "memory", "threads"], duration=1.5, max_count=1)
    folder = tmp_path / "artefacts" / "run-1"
    probing = Probing(host, HelperPlan(settings, ("profile", "memory", "threads"), folder))  # type: ignore[arg-type]
    # the memory helper put testfleet's sitecustomize on the PYTHONPATH of the SUT every worker starts
    assert host.plan.worker.sut.env["PYTHONPATH"].split(os.pathsep)[0] != ""
    with SutInstance(host.plan.worker.sut, "gw0", tmp_path / "sut") as instance:
        probing.on_anomalies("gw0", TestResult(outcome="passed", sut_pid=instance.pid), [ANOMALY])
        probing.on_anomalies("gw1", TestResult(outcome="passed", sut_pid=os.getppid()), [ANOMALY])
        deadline = time.monotonic() + 60
        for session in list(probing.sessions):
            session.join(max(0.0, deadline - time.monotonic()))
        probing.tick()
        probing.on_anomalies("gw0", TestResult(outcome="passed", sut_pid=instance.pid), [ANOMALY])
    probing.close()
    messages = host.bus.messages(HelperMessage)
    by_action = {(m.action, m.helper): m for m in messages}
    refused = by_action.get(("skip", "profile"))
    if refused is not None and any(word in refused.reason.lower() for word in ("permission", "ptrace", "denied")):
        pytest.skip(f"py-spy cannot attach here: {refused.reason}")
    attach = by_action[("attach", "")]
    assert attach.pid == instance.pid and attach.worker == "gw0" and attach.nodeid == ANOMALY["nodeid"]
    artefacts = {m.helper: Path(str(m.path)) for m in messages if m.action == "artefact"}
    assert set(artefacts) == {"profile", "memory", "threads"}, [m.reason for m in messages]
    assert all(path.parent == folder for path in artefacts.values())
    assert "planted_hot_checksum" in artefacts["profile"].read_text()  # the flame graph SVG
    assert str(script) in artefacts["threads"].read_text()  # the SUT's stack, by file
    growth = artefacts["memory"].read_text().split("growth:")[1]
    assert f"{script}:{LEAK_LINE}" in growth  # the leaking line grew while the helper watched
    skips = [m.reason for m in messages if m.action == "skip"]
    assert any("not a process of this machine's run" in reason for reason in skips)  # gw1: not ours
    assert any("max_count" in reason for reason in skips)  # one attachment allowed
