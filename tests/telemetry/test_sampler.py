"""Telemetry sampler against real processes (no psutil mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from telemetry.conftest import wait_until
from testfleet.telemetry.sampler import (
    ProcessProbe,
    Sample,
    SystemProbe,
    summarize,
    worker_probe,
)

from .thread_sampler import Sampler

BUSY = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"
SLEEP = "import time\ntime.sleep(60)\n"
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def spawn():
    procs: list[subprocess.Popen] = []

    def start(code: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code], **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
        except psutil.Error:
            pass
        proc.kill()
        proc.wait(10)


KEYS = {"cpu_percent", "rss_mb", "threads", "fds", "read_bytes", "write_bytes", "ctx_switches",
        "procs"}


def test_busy_process_uses_cpu(spawn):
    proc = spawn(BUSY)
    probe = ProcessProbe(proc.pid, "sut")
    values = wait_until(lambda: (v := probe.read()) and v["sut.cpu_percent"] > 20 and v)
    assert {k.split(".", 1)[1] for k in values} == KEYS
    assert values["sut.rss_mb"] > 0
    assert values["sut.threads"] >= 1
    assert values["sut.fds"] >= 0
    assert values["sut.procs"] == 1


def test_sleeping_process_uses_no_cpu(spawn):
    proc = spawn(SLEEP)
    probe = ProcessProbe(proc.pid, "sut")
    # let interpreter start-up finish (the sleeper's ctx switches stop growing), then measure
    def settled():
        a = probe.read()["sut.ctx_switches"]
        time.sleep(0.3)
        return probe.read()["sut.ctx_switches"] == a
    wait_until(settled)
    time.sleep(0.3)
    values = probe.read()
    assert values["sut.cpu_percent"] < 5.0
    assert values["sut.rss_mb"] > 0
    assert values["sut.threads"] >= 1


def test_child_is_counted_in_the_tree(spawn):
    proc = spawn(PARENT, stdout=subprocess.PIPE, text=True)
    child_pid = int(proc.stdout.readline())
    tree = ProcessProbe(proc.pid, "sut")
    alone = ProcessProbe(proc.pid, "sut", tree=False)
    child = ProcessProbe(child_pid, "child")
    values = tree.read()
    assert values["sut.procs"] == 2
    assert values["sut.threads"] >= 2
    assert values["sut.rss_mb"] > alone.read()["sut.rss_mb"]
    # the child leaves: the tree shrinks without an error, the child's own probe reports nothing
    psutil.Process(child_pid).kill()
    wait_until(lambda: tree.read()["sut.procs"] == 1)
    assert child.read() == {}


def test_child_appearing_later_is_seen(spawn):
    proc = spawn(PARENT, stdout=subprocess.PIPE, text=True)
    probe = ProcessProbe(proc.pid, "sut", rescan=0.1)  # likely before the child exists
    proc.stdout.readline()
    wait_until(lambda: probe.read()["sut.procs"] == 2)


def test_dead_process_yields_nothing(spawn):
    proc = spawn(SLEEP)
    probe = ProcessProbe(proc.pid, "sut")
    assert probe.read()
    proc.kill()
    proc.wait(10)
    assert probe.read() == {}
    assert probe.read() == {}


def test_zombie_process_yields_nothing(spawn):
    proc = spawn(SLEEP)
    probe = ProcessProbe(proc.pid, "sut")
    proc.kill()  # not reaped yet: a zombie on POSIX
    wait_until(lambda: probe.read() == {})
    proc.wait(10)


def test_probe_for_missing_pid():
    pid = 2**22 + 12345
    while psutil.pid_exists(pid):
        pid += 1
    assert ProcessProbe(pid, "sut").read() == {}


def test_worker_and_system_probes():
    worker = worker_probe()()
    assert worker["worker.procs"] == 1 and worker["worker.rss_mb"] > 0
    system = SystemProbe()
    time.sleep(0.05)
    values = system()
    assert set(values) == {"system.cpu_percent", "system.mem_percent"}
    assert 0 <= values["system.cpu_percent"] <= 100
    assert 0 < values["system.mem_percent"] <= 100


def test_sampler_collects_samples_over_a_window():
    calls = []
    sampler = Sampler([lambda: calls.append(1) or {"x": float(len(calls))}], interval=0.02)
    with sampler:
        t0 = time.monotonic()
        wait_until(lambda: len(sampler.window(t0, time.monotonic())) >= 10)
        time.sleep(0.5)
        t1 = time.monotonic()
    got = sampler.window(t0, t1)
    # 0.5 s at 20 ms after >= 10 samples: >= 25 expected; wide bounds for loaded machines
    assert 20 <= len(got) <= (t1 - t0) / 0.02 + 5
    assert all(t0 <= s.t <= t1 for s in got)
    assert [s.t for s in got] == sorted(s.t for s in got)
    xs = [s.values["x"] for s in got]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert not sampler.running
    assert sampler.errors == 0


def test_sampler_with_real_probes_and_custom_metrics(spawn):
    proc = spawn(BUSY)
    sampler = Sampler([ProcessProbe(proc.pid, "sut"), worker_probe()], interval=0.02)
    with sampler:
        t0 = time.monotonic()
        sampler.record_metric("latency_ms", 12.5)
        sampler.record_metric("latency_ms", 7.5)
        wait_until(lambda: len(sampler.window(t0, time.monotonic())) >= 15)
        t1 = time.monotonic()
    summary = summarize(sampler.window(t0, t1))
    assert summary["latency_ms"] == {"mean": 10.0, "max": 12.5, "p95": pytest.approx(12.25),
                                     "delta": -5.0, "count": 2.0}
    assert summary["sut.cpu_percent"]["max"] > 20
    assert summary["sut.rss_mb"]["mean"] > 0
    assert summary["worker.threads"]["max"] >= 2  # the sampler thread itself
    with pytest.raises(ValueError):
        sampler.record_metric("", 1.0)
    with pytest.raises(TypeError):
        sampler.record_metric("x", "1")


def test_failing_probe_is_counted_not_fatal():
    def broken():
        raise RuntimeError("boom")

    sampler = Sampler([broken, lambda: {"ok": 1.0}], interval=0.02)
    with sampler:
        wait_until(lambda: sampler.errors >= 3)
        assert sampler.running
    assert "boom" in sampler.last_error
    assert all(s.values == {"ok": 1.0} for s in sampler.samples())


def test_ring_buffer_is_bounded():
    sampler = Sampler([lambda: {"x": 1.0}], interval=0.02, capacity=5)
    for _ in range(12):
        sampler.sample_once()
    assert len(sampler) == 5
    assert sampler.ticks == 12


def test_sampler_is_thread_safe():
    sampler = Sampler([lambda: {"x": 1.0}], interval=0.001, capacity=1000)

    def writer():
        for i in range(500):
            sampler.record_metric("c", float(i))

    with sampler:
        threads = [threading.Thread(target=writer) for _ in range(4)]
        for th in threads:
            th.start()
        for _ in range(200):
            sampler.window(0, time.monotonic())
        for th in threads:
            th.join()
    samples = sampler.samples()
    assert len(samples) == 1000
    assert [s.t for s in samples] == sorted(s.t for s in samples)


def test_bad_arguments():
    with pytest.raises(ValueError):
        Sampler([], interval=0)
    with pytest.raises(ValueError):
        Sampler([], capacity=0)
    sampler = Sampler([], interval=0.02).start()
    try:
        with pytest.raises(RuntimeError):
            sampler.start()
    finally:
        sampler.stop()


def test_summarize_exact():
    samples = [Sample(float(i), {"a": v, **({"b": 2.0 * v} if i % 2 == 0 else {})})
               for i, v in enumerate([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0])]
    s = summarize(samples)
    assert s["a"]["mean"] == pytest.approx(3.9)
    assert s["a"]["max"] == 9.0
    # sorted: 1 1 2 3 3 4 5 5 6 9; p95 rank 0.95*9 = 8.55 -> 6 + 0.55*(9-6) = 7.65
    assert s["a"]["p95"] == pytest.approx(7.65)
    assert s["a"]["delta"] == 0.0
    assert s["a"]["count"] == 10
    # b only in even samples: 6 8 10 4 10
    assert s["b"] == {"mean": pytest.approx(7.6), "max": 10.0, "p95": pytest.approx(10.0),
                      "delta": 4.0, "count": 5.0}
    assert summarize([]) == {}
    assert summarize([Sample(0.0, {"n": float("nan")}), Sample(1.0, {"n": 2.0})])["n"]["count"] == 1


def test_sampler_overhead():
    """Sampler CPU cost at 100 ms with 2 probes over ~2 s (printed, not asserted)."""
    sut = subprocess.Popen([sys.executable, "-c", SLEEP])
    try:
        me = psutil.Process(os.getpid())
        probes = [ProcessProbe(sut.pid, "sut"), worker_probe()]
        before = me.cpu_times()
        w0 = time.monotonic()
        sampler = Sampler(probes, interval=0.1).start()
        time.sleep(2.0)
        sampler.stop()
        wall = time.monotonic() - w0
        after = me.cpu_times()
        process_cpu = (after.user + after.system) - (before.user + before.system)
        print(f"\nsampler overhead: thread {sampler.cpu_seconds * 1000:.1f} ms CPU over "
              f"{sampler.wall_seconds:.2f} s = {sampler.overhead * 100:.3f}% of one core; "
              f"process {process_cpu * 1000:.1f} ms over {wall:.2f} s = "
              f"{process_cpu / wall * 100:.3f}%; ticks {sampler.ticks}")
        assert sampler.ticks >= 5
    finally:
        sut.kill()
        sut.wait(10)
