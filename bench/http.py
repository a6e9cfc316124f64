#!/usr/bin/env python
"""HTTP scenario throughput: testfleet's ``run_batch`` against wrk and Locust, same SUT, same
concurrency, and the cost of telemetry sampling during a batch.

    python bench/http.py                          # 10 s a row, concurrency 64 and 1000
    python bench/http.py --duration 5 --concurrency 64
    python bench/http.py --only testfleet --only overhead

The SUT is the example inventory service's ASGI variant (examples/inventory/inventory_asgi.py)
under uvicorn (one worker, access log off) on 127.0.0.1, on a free port. One item is created,
then every tool sends ``GET /items/<id>`` for ``--duration`` seconds at each concurrency:

  wrk        the upper bound (C, event loop, no checks); installed with apt-get when missing
             and running as root, else its rows are skipped with a note
  locust     headless, one process, FastHttpUser (HttpUser when missing), u = r = concurrency,
             requests/s and percentiles from its --csv stats
  testfleet  run_batch of a one-step scenario (expect status 200), time-bounded
             (duration=), counting the peak number of executions in flight

overhead: run_batch with a fixed repeat count, with and without the telemetry sampler a worker
runs (a SamplerProcess at 0.1 s reading this process, the machine and the SUT's tree); pairs
alternate their order, the figure is the difference of the median walls in percent (target
<= 2 %). The same for this process's CPU time (the batch and the sampler reader thread), which other load on
the machine disturbs less than wall time.

Prints a table and one JSON line per figure (also appended to bench/results/http.jsonl).
Exit 1 when a tool's run failed (errors, no figure); targets are reported, never enforced.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: with its folder first on sys.path (as `python bench/http.py` puts
# it), `import http` - the standard library's, which httpx and uvicorn import - would find this
# script. The folder goes last instead, where `vs_xdist` is still found.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH] + [str(_BENCH)]

import argparse
import csv
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from vs_xdist import context, publish

from testfleet.adapters.http_scenarios import BatchResult, run_batch, scenario_from_dict
from testfleet.telemetry.sampler_process import SamplerProcess

ROOT = Path(__file__).resolve().parents[1]
ASGI = ROOT / "examples" / "inventory" / "inventory_asgi.py"
RESULTS = Path(__file__).resolve().parent / "results" / "http.jsonl"
OVERHEAD_TARGET_PCT = 2.0

WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("TFBENCH p50_us=%d p95_us=%d requests=%d\\n",
    latency:percentile(50), latency:percentile(95), summary.requests))
end
"""

LOCUSTFILE = """
from locust import constant, task
try:
    from locust.contrib.fasthttp import FastHttpUser as Base
except ImportError:
    from locust import HttpUser as Base


class Get(Base):
    wait_time = constant(0)

    @task
    def get_item(self):
        self.client.get({path!r}, name="get item")
"""


# -- the SUT --------------------------------------------------------------------------------------
@contextmanager
def asgi_server() -> Iterator[tuple[str, int]]:
    """The ASGI example under uvicorn on a free port of 127.0.0.1: (base url, pid)."""
    proc = subprocess.Popen([sys.executable, str(ASGI), "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the ASGI example did not come up (is uvicorn installed?)")
            time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def row(tool: str, concurrency: int, rps: float | None, p50: float | None, p95: float | None,
        errors: int | None, note: str = "", **extra: Any) -> dict[str, Any]:
    return {"tool": tool, "concurrency": concurrency,
            "requests_per_s": None if rps is None else round(rps, 1),
            "p50_ms": None if p50 is None else round(p50, 2),
            "p95_ms": None if p95 is None else round(p95, 2),
            "errors": errors, "note": note} | extra


# -- wrk ------------------------------------------------------------------------------------------
def find_wrk() -> tuple[str | None, str]:
    found = shutil.which("wrk")
    if found:
        return found, ""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: apt-get install -y wrk ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, timeout=300,
                       check=False)
        found = shutil.which("wrk")
        if found:
            return found, ""
        return None, "wrk missing and apt-get install -y wrk failed"
    return None, "wrk missing (install the Debian package wrk; needs root)"


def bench_wrk(wrk: str, url: str, concurrency: int, duration: float, folder: Path) -> dict:
    script = folder / "report.lua"
    script.write_text(WRK_LUA)
    threads = max(1, min(os.cpu_count() or 1, concurrency))
    cmd = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
           "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    mine = re.search(r"TFBENCH p50_us=(\d+) p95_us=(\d+) requests=(\d+)", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    if not rps or not mine:
        return row("wrk", concurrency, None, None, None, None, "no figures: " + out[-200:])
    return row("wrk", concurrency, float(rps.group(1)), int(mine.group(1)) / 1000,
               int(mine.group(2)) / 1000, errors, f"{threads} threads",
               requests=int(mine.group(3)))


# -- Locust ---------------------------------------------------------------------------------------
def bench_locust(url: str, path: str, concurrency: int, duration: float, folder: Path) -> dict:
    # find_spec, not import: importing locust monkey-patches this process with gevent (threads,
    # sockets, time), which would slow down and distort the testfleet rows measured here
    if importlib.util.find_spec("locust") is None:
        return row("locust", concurrency, None, None, None, None,
                   "locust not installed (pip install -e '.[bench]')")
    user = "FastHttpUser" if importlib.util.find_spec("geventhttpclient") else "HttpUser"
    locustfile = folder / "locustfile.py"
    locustfile.write_text(LOCUSTFILE.format(path=path))
    prefix = folder / f"locust-{concurrency}"
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
           "-u", str(concurrency), "-r", str(concurrency), "-t", f"{max(1, round(duration))}s",
           "--host", url, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
           "--stop-timeout", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                          cwd=folder, check=False)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        return row("locust", concurrency, None, None, None, None,
                   f"no stats (exit {proc.returncode}): {proc.stderr[-200:]}")
    with stats.open(newline="") as fh:
        total = next((r for r in csv.DictReader(fh) if r["Name"] == "Aggregated"), None)
    if total is None or not float(total["Request Count"]):
        return row("locust", concurrency, None, None, None, None, "no requests in its stats")
    return row("locust", concurrency, float(total["Requests/s"]), float(total["50%"]),
               float(total["95%"]), int(total["Failure Count"]), f"1 process, {user}",
               requests=int(total["Request Count"]))


# -- testfleet ------------------------------------------------------------------------------------
def one_step(path: str) -> Any:
    return scenario_from_dict({"name": "get item", "steps": [
        {"name": "get", "request": {"method": "GET", "path": path},
         "expect": {"status": [200]}}]}, source="bench/http.py")


def bench_testfleet(url: str, path: str, concurrency: int, duration: float) -> dict:
    result = run_batch(one_step(path), url, concurrency=concurrency, duration=duration)
    return row("testfleet", concurrency, result.requests_per_s, result.percentile_ms(50),
               result.percentile_ms(95), result.failed,
               f"peak {result.peak_in_flight} in flight" + ("" if result.ok else
                                                              f"; {result.message[:120]}"),
               requests=result.requests, peak_in_flight=result.peak_in_flight,
               held_1000=result.peak_in_flight >= 1000)


def bench_overhead(url: str, path: str, server_pid: int, concurrency: int, repeat: int,
                   pairs: int) -> dict:
    scenario = one_step(path)

    def timed(sampled: bool) -> tuple[float, float, BatchResult, SamplerProcess | None]:
        # as in a worker: the sampler process is already running when the test starts
        sampler = None
        if sampled:
            sampler = SamplerProcess(0.1)
            sampler.watch([server_pid], [])
            deadline = time.monotonic() + 10
            while not sampler.samples() and time.monotonic() < deadline:
                time.sleep(0.01)
        cpu0 = time.process_time()
        try:
            result = run_batch(scenario, url, repeat=repeat, concurrency=concurrency)
        finally:
            cpu = time.process_time() - cpu0
            if sampler is not None:
                sampler.ticks = len(sampler.samples())
                sampler.cpu_fraction = sampler.overhead
                sampler.stop()
        return result.wall_s, cpu, result, sampler

    timed(False)  # warm-up: connections, caches
    plain: list[float] = []
    sampled: list[float] = []
    cpu_plain: list[float] = []
    cpu_sampled: list[float] = []
    ticks, cpu = [], []
    failed = 0
    for i in range(pairs):
        for use in ((False, True) if i % 2 == 0 else (True, False)):
            wall, cpu_s, result, sampler = timed(use)
            failed += result.failed
            (sampled if use else plain).append(wall)
            (cpu_sampled if use else cpu_plain).append(cpu_s)
            if sampler is not None:
                ticks.append(sampler.ticks)
                cpu.append(sampler.cpu_fraction)
        print(f"  pair {i + 1}: without {plain[-1]:.3f} s ({cpu_plain[-1]:.3f} s CPU), with "
              f"sampler {sampled[-1]:.3f} s ({cpu_sampled[-1]:.3f} s CPU)", flush=True)
    base, with_s = statistics.median(plain), statistics.median(sampled)
    pct = (with_s - base) / base * 100
    cpu_base, cpu_with = statistics.median(cpu_plain), statistics.median(cpu_sampled)
    return {"part": "telemetry_overhead", "concurrency": concurrency, "repeat": repeat,
            "pairs": pairs, "without_s": [round(w, 4) for w in plain],
            "with_s": [round(w, 4) for w in sampled], "median_without_s": round(base, 4),
            "median_with_s": round(with_s, 4), "overhead_pct": round(pct, 2),
            "pair_diff_median_pct": round(statistics.median(
                (s - p) / p * 100 for s, p in zip(sampled, plain, strict=True)), 2),
            "median_cpu_without_s": round(cpu_base, 4), "median_cpu_with_s": round(cpu_with, 4),
            "cpu_overhead_pct": round((cpu_with - cpu_base) / cpu_base * 100, 2),
            "sampler_ticks_median": statistics.median(ticks),
            "sampler_process_cpu_fraction": round(statistics.median(cpu), 4),
            "failed_executions": failed, "target_pct": OVERHEAD_TARGET_PCT,
            "met": pct <= OVERHEAD_TARGET_PCT}


# -- report ---------------------------------------------------------------------------------------
def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    print(f"\n{'tool':<11}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}  note")
    for r in rows:
        print(f"{r['tool']:<11}{r['concurrency']:>6}{fmt(r['requests_per_s'], ',.0f'):>10}"
              f"{fmt(r['p50_ms'], '.1f'):>9}{fmt(r['p95_ms'], '.1f'):>9}"
              f"{fmt(r['errors'], 'd'):>8}  {r['note']}")


def ratios(rows: list[dict]) -> list[dict]:
    out = []
    for concurrency in sorted({r["concurrency"] for r in rows}):
        by = {r["tool"]: r["requests_per_s"] for r in rows if r["concurrency"] == concurrency}
        tf = by.get("testfleet")
        if not tf:
            continue
        figure: dict[str, Any] = {"part": "ratio", "concurrency": concurrency}
        for peer in ("locust", "wrk"):
            if by.get(peer):
                figure[f"testfleet_over_{peer}"] = round(tf / by[peer], 3)
        out.append(figure)
        text = ", ".join(f"testfleet/{k.rsplit('_', 1)[1]} = {v:.2f}" for k, v in figure.items()
                         if k.startswith("testfleet_over"))
        print(f"concurrency {concurrency}: {text or 'no peer figures'}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a row (default 10)")
    parser.add_argument("--concurrency", type=int, action="append",
                        help="concurrency to measure at (repeatable; default 64 and 1000)")
    parser.add_argument("--only", action="append",
                        choices=["wrk", "locust", "testfleet", "overhead"])
    parser.add_argument("--overhead-repeat", type=int, default=20000,
                        help="executions in each overhead run (default 20000: batches of ~2 s, long enough to time)")
    parser.add_argument("--overhead-concurrency", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=5,
                        help="with/without pairs for the overhead figure (default 5, min 3)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    parts = set(args.only or ["wrk", "locust", "testfleet", "overhead"])
    levels = args.concurrency or [64, 1000]
    ctx = context() | {"bench": "http"}
    rows: list[dict] = []
    lines: list[str] = []
    ok = True
    with asgi_server() as (url, pid), tempfile.TemporaryDirectory(prefix="tf-http-") as tmp:
        folder = Path(tmp)
        created = httpx.post(f"{url}/items", json={"name": "widget", "quantity": 5, "price": 2.5})
        path = f"/items/{created.json()['id']}"
        print(f"SUT: {ASGI.name} under uvicorn at {url} (pid {pid}); GET {path}; "
              f"{args.duration:g} s a row; {os.cpu_count()} CPUs", flush=True)
        wrk, wrk_note = find_wrk() if "wrk" in parts else (None, "")
        for concurrency in levels:
            if "wrk" in parts:
                rows.append(bench_wrk(wrk, url + path, concurrency, args.duration, folder) if wrk
                            else row("wrk", concurrency, None, None, None, None, wrk_note))
                print_table(rows[-1:])
            if "locust" in parts:
                rows.append(bench_locust(url, path, concurrency, args.duration, folder))
                print_table(rows[-1:])
            if "testfleet" in parts:
                rows.append(bench_testfleet(url, path, concurrency, args.duration))
                print_table(rows[-1:])
        if rows:
            print_table(rows)
        for r in rows:
            if r["requests_per_s"] is None and "missing" not in r["note"] \
                    and "not installed" not in r["note"]:
                ok = False
            if r["errors"]:
                ok = False
        figures = ratios(rows)
        for r in rows:
            if r["tool"] == "testfleet":
                print(f"testfleet at concurrency {r['concurrency']}: peak {r['peak_in_flight']} "
                      f"executions in flight ({'>=' if r['held_1000'] else '<'} 1,000)")
        lines += [json.dumps(ctx | {"part": "throughput"} | r) for r in rows]
        lines += [json.dumps(ctx | f) for f in figures]
        if "overhead" in parts:
            pairs = max(3, args.pairs)
            print(f"\ntelemetry overhead: {pairs} pairs of run_batch(repeat="
                  f"{args.overhead_repeat}, concurrency={args.overhead_concurrency}), "
                  f"alternating order", flush=True)
            figure = bench_overhead(url, path, pid, args.overhead_concurrency,
                                    args.overhead_repeat, pairs)
            ok &= figure["failed_executions"] == 0
            print(f"median without {figure['median_without_s']:.3f} s, with sampler "
                  f"{figure['median_with_s']:.3f} s: {figure['overhead_pct']:+.2f} % "
                  f"(median of pair differences {figure['pair_diff_median_pct']:+.2f} %; "
                  f"target <= {OVERHEAD_TARGET_PCT:g} %: {'met' if figure['met'] else 'missed'}); "
                  f"sampler process CPU {figure['sampler_process_cpu_fraction']:.2%} of a core; "
                  f"process CPU time {figure['median_cpu_without_s']:.3f} s -> "
                  f"{figure['median_cpu_with_s']:.3f} s ({figure['cpu_overhead_pct']:+.2f} %)")
            lines.append(json.dumps(ctx | figure))
    publish(lines, RESULTS, save=not args.no_save)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
