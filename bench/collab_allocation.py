"""``bench/collaboration.py --part allocation``: a load-dependent defect, found with specialisation on vs off.

A small HTTP SUT (one instance per worker, ``--workers 2``) whose configuration has three keys:
``mode`` (six values), ``level`` (1-8) and ``codec`` (four values): 192 configurations. In
``mode = "batch"`` every request takes ~25 ms (part of it CPU) and leaves a background job
running for ``HOLD`` seconds. The defect is load-dependent: a batch request that arrives while
the instance holds ``DEEP`` (12) or more jobs fails with a 500 ("job table overflow"). One test
execution sends ``clients`` (1-8) concurrent requests, so no single execution can reach it: the
instance must take several loaded executions in a row *in the same configuration* (a change of
configuration restarts the SUT, and its jobs are gone). A batch instance holding ``BUSY`` (3) or
more jobs answers 503 first: a shallow failure, and the stress (latency, CPU) that goes with it,
is what specialisation sees.

The explored test (``clients``, ``size``, ``fmt`` and the SUT's ``sut.*`` keys) runs under
``testfleet run --workers 2 --explore E --seed S`` with ``[specialise] enabled = true`` and
``false``, for ``--runs`` seeds. Figure per arm: explored executions until the first result with
the deep defect's message (a run that never finds it counts ``E + 1``, and says so), the median
over seeds, and ``ratio`` = median off / median on (target >= 2). No zoo system is used, so the
held-out rule does not apply.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

TARGET_RATIO = 2.0
DEEP_MARK = "job table overflow"

SUT = '''
import argparse, json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
parser.add_argument("--config")
args = parser.parse_args()
with open(args.config) as fh:
    CONFIG = json.load(fh)
HOLD, BUSY, DEEP = 2.0, 3, 12
LOCK = threading.Lock()
JOBS = [0]


def job():
    time.sleep(HOLD)
    with LOCK:
        JOBS[0] -= 1


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = 200, "ok"
        if self.path.startswith("/work") and CONFIG["mode"] == "batch":
            with LOCK:
                JOBS[0] += 1
                held = JOBS[0]
            threading.Thread(target=job, daemon=True).start()
            end = time.perf_counter() + 0.01
            while time.perf_counter() < end:  # CPU: the batch path is heavy
                pass
            time.sleep(0.015)
            if held >= DEEP:
                status, body = 500, "job table overflow: %d jobs" % held
            elif held >= BUSY:
                status, body = 503, "busy: %d jobs" % held
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
'''

SPACE = """dimensions:
  mode: {type: choice, values: [plain, gzip, json, xml, stream, batch]}
  level: {type: int, min: 1, max: 8}
  codec: {type: choice, values: [utf8, latin1, ascii, utf16]}
"""

TESTS = '''
import threading
import urllib.error
import urllib.request

import testfleet
from testfleet import Choice, Int


def get(url, out, i):
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            out[i] = (response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        out[i] = (exc.code, exc.read().decode())


@testfleet.explore(clients=Int(1, 8), size=Int(0, 1000), fmt=Choice(["a", "b", "c", "d", "e"]))
def test_work(testfleet_instance, clients, size, fmt):
    out = [None] * clients
    threads = [threading.Thread(target=get, args=(f"{testfleet_instance.base_url}/work?size={size}&fmt={fmt}",
                                                  out, i)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deep = [body for status, body in out if status == 500]
    assert not deep, deep[0]
    busy = [body for status, body in out if status != 200]
    assert not busy, busy[0]
'''


def write_suite(folder: Path, enabled: bool) -> None:
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "sut.py").write_text(SUT)
    (folder / "sut.space.yaml").write_text(SPACE)
    (folder / "tests" / "test_load.py").write_text(TESTS)
    command = json.dumps(f"{sys.executable} sut.py --port {{port}} --config {{config}}")
    (folder / "testfleet.toml").write_text(
        "[sut]\n"
        f"command = {command}\n"
        'ready = {http = "http://127.0.0.1:{port}/health"}\n'
        'config_file = "sut-{instance}.json"\n'
        'config = {mode = "plain", level = 1, codec = "utf8"}\n'
        'config_space = "sut.space.yaml"\n'
        "start_timeout = 20.0\n"
        f"[specialise]\nenabled = {'true' if enabled else 'false'}\n")


def one_run(root: Path, arm: str, seed: int, explore: int, timeout: float) -> dict[str, Any]:
    folder = root / f"{arm}-{seed}"
    write_suite(folder, arm == "on")
    store = folder / "s.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}
    env["PYTEST_ADDOPTS"] = "-p no:randomly"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "testfleet", "run", "--store", str(store), "--workers", "2", "-q",
                           "--seed", str(seed), "--explore", str(explore), "--replicate-budget", "0"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        results = db.results(run.run_id)
        origins = {v.variant_id: v.origin for v in db.variants()}
        events = TelemetryStore(db).events(run.run_id, ["allocation"])
    # explored executions in the order they finished (the baseline and minimisation are not exploring)
    explored = sorted((r for r in results if r.final
                       and origins.get(r.variant_id) not in (None, "baseline", "minimize")),
                      key=lambda r: (r.finished_at, r.variant_id))
    first = next((n for n, r in enumerate(explored, 1) if DEEP_MARK in (r.message or "")), None)
    return {"arm": arm, "seed": seed, "exit": proc.returncode, "wall_s": round(wall, 1),
            "explored": len(explored), "first": first, "found": first is not None,
            "busy": sum(1 for r in explored if "busy" in (r.message or "")),
            "grants": sum(1 for e in events if e.get("action") == "grant"),
            "releases": sum(1 for e in events if e.get("action") == "release"),
            "steered": max((int(e.get("steered") or 0) for e in events), default=0),
            "tail": "" if proc.returncode in (0, 1) else proc.stdout[-600:] + proc.stderr[-600:]}


def part_allocation(args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="tf-alloc-"))
    rows: list[dict[str, Any]] = []
    try:
        print(f"{'seed':>9} {'arm':>4} {'first find':>10} {'explored':>9} {'503s':>5} {'grants':>7} "
              f"{'steered':>8} {'wall s':>7}")
        for k in range(args.alloc_runs):
            seed = args.seed + k
            for arm in (("on", "off") if k % 2 == 0 else ("off", "on")):
                row = one_run(root, arm, seed, args.explore, args.timeout)
                rows.append(row)
                print(f"{seed:>9} {arm:>4} {row['first'] if row['found'] else 'never':>10} {row['explored']:>9} "
                      f"{row['busy']:>5} {row['grants']:>7} {row['steered']:>8} {row['wall_s']:>7}"
                      + (f"  exit {row['exit']}: {row['tail']!r}" if row["tail"] else ""))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    counts = {arm: [r["first"] if r["found"] else args.explore + 1 for r in rows if r["arm"] == arm]
              for arm in ("on", "off")}
    medians = {arm: statistics.median(v) if v else None for arm, v in counts.items()}
    ratio = medians["off"] / medians["on"] if medians["on"] and medians["off"] else None
    print(f"\nexplored executions to first find (not found: {args.explore + 1}): on {counts['on']} "
          f"median {medians['on']}; off {counts['off']} median {medians['off']}; ratio off/on "
          f"{ratio if ratio is None else round(ratio, 2)} (target >= {TARGET_RATIO})")
    common = meta | {"part": "allocation", "runs": args.alloc_runs, "explore": args.explore, "seed": args.seed,
                     "workers": 2, "valid": all(r["exit"] in (0, 1) for r in rows)}
    figures: dict[str, Any] = {
        "first_find_on": counts["on"], "first_find_off": counts["off"],
        "median_first_find_on": medians["on"], "median_first_find_off": medians["off"],
        "ratio_off_on": None if ratio is None else round(ratio, 2),
        "found_on": sum(r["found"] for r in rows if r["arm"] == "on"),
        "found_off": sum(r["found"] for r in rows if r["arm"] == "off"),
        "grants_on": sum(r["grants"] for r in rows if r["arm"] == "on")}
    return [json.dumps(common | {"figure": name, "value": value}
                       | ({"target": f">= {TARGET_RATIO}"} if name == "ratio_off_on" else {}))
            for name, value in figures.items()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", dest="alloc_runs", type=int, default=5)
    parser.add_argument("--explore", type=int, default=150)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--timeout", type=float, default=600.0)
    for line in part_allocation(parser.parse_args(), {}):
        print(line)
