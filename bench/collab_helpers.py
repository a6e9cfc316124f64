"""``bench/collaboration.py --part helpers``: a profiler attached to a SUT on an anomaly (issue 20).

A small Python SUT (``sut_app.py``, an HTTP server) spends each request in a planted hot function,
``planted_hot_checksum``. The suite, run by ``testfleet run --workers 1`` against it:

* ``test_a_spike`` sends 10 requests; light ones (2,000 rounds, after 0.6 s asleep) in the warm-up
  runs, heavy ones (2,000,000 rounds) in the measured runs (``TF_BENCH_SPIKE=1``): its duration
  becomes an outlier against the history, and the anomaly monitor flags it. Its 0.6 s asleep make
  it the slowest test in the history, so it runs first (slowest first) and the load runs while
  the profiler is attached, as in a run where an anomaly comes mid-run (when it ran last, the run
  ended as the profiler attached: no test ran under it, and py-spy was stopped before writing);
* ``test_load[k]`` (``--helper-tests``, 16) keep the SUT busy afterwards, 4 requests of 600,000
  rounds each.

Three warm-up runs (no spike) give every test its history (``anomaly_min_history = 3``). Then
``--helper-pairs`` pairs of measured runs (same suite, same seed, each on its own copy of the
warm store), helpers ``on`` (``enabled = ["profile"]``, ``duration = --helper-duration``,
``max_count = 1``) and ``off`` (``max_count = 0``), alternating which goes first. Figures:

* ``wall_ratio`` — median wall time (launch to exit) on / off (target <= 1.05);
* ``window_ratio`` — the tests that started while the profiler was attached (between the
  ``attach`` and the ``artefact`` events of the on run): their summed durations on / off, median
  over the pairs: the overhead where the profiler really ran;
* ``profiler_cpu_share_attached`` / ``profiler_cpu_of_run_wall`` — py-spy's own CPU seconds
  (read by the helper's watch) per second attached, and over the on runs' wall time: the cost
  itself, which a shared machine's noise hides in wall times;
* ``artefact_names_planted`` — every on run stored a flame graph SVG that names
  ``planted_hot_checksum``; ``anomaly_both_arms`` — both arms flagged the spike (same conditions).
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

TARGET_RATIO = 1.05
PLANTED = "planted_hot_checksum"

SUT = '''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def planted_hot_checksum(rounds):
    total = 0
    for i in range(rounds):
        total = (total * 31 + i) % 1_000_003
    return total


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        rounds = int(parse_qs(urlparse(self.path).query).get("n", ["0"])[0])
        body = str(planted_hot_checksum(rounds)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

SUITE = '''
import os
import time
import urllib.request

import pytest


def call(base, rounds, times):
    for _ in range(times):
        with urllib.request.urlopen(f"{{base}}/?n={{rounds}}", timeout=60) as answer:
            answer.read()


def test_a_spike(testfleet_instance):
    if os.environ.get("TF_BENCH_SPIKE"):
        call(testfleet_instance.base_url, 2_000_000, 10)
    else:  # as long as a spike but idle: the slowest test, so it runs first and the load follows it
        time.sleep(0.6)
        call(testfleet_instance.base_url, 2_000, 10)


@pytest.mark.parametrize("k", range({tests}))
def test_load(testfleet_instance, k):
    call(testfleet_instance.base_url, 600_000, 4)
'''


def write_suite(folder: Path, tests: int) -> None:
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "sut_app.py").write_text(SUT.lstrip("\n"))
    (folder / "tests" / "test_load.py").write_text(SUITE.format(tests=tests).lstrip("\n"))


def settings_text(folder: Path, *, helpers: bool, duration: float) -> str:
    command = f"{sys.executable} {folder / 'sut_app.py'} {{port}}"
    table = 'enabled = ["profile"]\nmax_count = 1\n' if helpers else "max_count = 0\n"
    return (f"workers = 1\nseed = 7\ntelemetry_interval = 0.05\nanomaly_min_history = 3\n\n"
            f"[sut]\ncommand = {json.dumps(command)}\nready = {{tcp = \"{{port}}\"}}\n\n"
            f"[helpers]\n{table}duration = {duration}\n")


def run_once(folder: Path, store: Path, *, helpers: bool, spike: bool, duration: float,
             timeout: float) -> dict[str, Any]:
    (folder / "testfleet.toml").write_text(settings_text(folder, helpers=helpers, duration=duration))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_", "TF_BENCH_"))}
    env["PYTEST_ADDOPTS"] = "-p no:randomly"
    if spike:
        env["TF_BENCH_SPIKE"] = "1"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "testfleet", "run", "--store", str(store), "-q"], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        durations = {r.nodeid: (r.started_at.timestamp() if r.started_at else 0.0, r.duration)
                     for r in db.results(run.run_id) if r.final}
        events = TelemetryStore(db).events(run.run_id, ["helper", "outlier"])
    helper = [e for e in events if e["kind"] == "helper"]
    attach = next((e["t"] for e in helper if e.get("action") == "attach"), None)
    artefact = next((e for e in helper if e.get("action") == "artefact" and e.get("helper") == "profile"), {})
    svg = artefact.get("path")
    done = next((e["t"] for e in helper if e.get("action") in ("artefact", "skip") and e.get("helper") == "profile"),
                None)
    names = bool(svg) and Path(str(svg)).is_file() and PLANTED in Path(str(svg)).read_text(errors="replace")
    return {"wall_s": wall, "exit": proc.returncode, "tail": proc.stdout[-600:] + proc.stderr[-600:],
            "durations": durations, "attach_t": attach, "cpu_s": artefact.get("cpu_s"),
            "attached_s": artefact.get("attached_s"), "done_t": done, "svg": svg, "names_planted": names,
            "flagged": any(e["kind"] == "outlier" and e.get("nodeid", "").endswith("test_a_spike") for e in events),
            "skips": [e.get("message") for e in helper if e.get("action") == "skip"]}


def window_ratio(on: dict[str, Any], off: dict[str, Any]) -> float | None:
    """Summed durations of the tests that started while the profiler was attached (on run), on / off."""
    if on["attach_t"] is None or on["done_t"] is None:
        return None
    inside = [n for n, (start, _d) in on["durations"].items() if on["attach_t"] <= start <= on["done_t"]
              and n in off["durations"]]
    if not inside:
        return None
    return sum(on["durations"][n][1] for n in inside) / sum(off["durations"][n][1] for n in inside)


def part_helpers(args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="tf-helpers-"))
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        folder = root / "suite"
        write_suite(folder, args.helper_tests)
        warm = root / "warm.duckdb"
        for _ in range(3):
            first = run_once(folder, warm, helpers=False, spike=False, duration=args.helper_duration,
                             timeout=args.timeout)
            if first["exit"] != 0:
                print(f"warm-up run failed (exit {first['exit']}):\n{first['tail']}")
                return []
        print(f"{'pair':>4} {'arm':>4} {'wall s':>7} {'flagged':>8} {'svg names planted':>18}")
        for k in range(args.helper_pairs):
            ran: dict[str, dict[str, Any]] = {}
            for arm in (("on", "off") if k % 2 == 0 else ("off", "on")):
                store = root / f"{arm}-{k}.duckdb"
                shutil.copy(warm, store)
                ran[arm] = run_once(folder, store, helpers=arm == "on", spike=True,
                                    duration=args.helper_duration, timeout=args.timeout)
                r = ran[arm]
                print(f"{k:>4} {arm:>4} {r['wall_s']:>7.2f} {'yes' if r['flagged'] else 'NO':>8} "
                      f"{('yes' if r['names_planted'] else 'NO') if arm == 'on' else '-':>18}"
                      + ("" if r["exit"] == 0 else f"  exit {r['exit']}: {r['tail']!r}")
                      + (f"  skips: {r['skips']}" if r["skips"] else ""))
            pairs.append((ran["on"], ran["off"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    on_walls = [on["wall_s"] for on, _off in pairs]
    off_walls = [off["wall_s"] for _on, off in pairs]
    wall = statistics.median(on_walls) / statistics.median(off_walls)
    windows = [w for on, off in pairs if (w := window_ratio(on, off)) is not None]
    window = statistics.median(windows) if windows else None
    names = all(on["names_planted"] for on, _off in pairs)
    # py-spy's own CPU: what attaching costs wherever the noise of a shared machine hides it in wall time
    cpu = [on["cpu_s"] for on, _off in pairs if on["cpu_s"] is not None]
    attached = [on["attached_s"] for on, _off in pairs if on["attached_s"] is not None]
    cpu_share = sum(cpu) / sum(attached) if cpu and sum(attached) else None
    cpu_of_run = sum(cpu) / sum(on_walls) if cpu else None
    both = all(on["flagged"] and off["flagged"] for on, off in pairs)
    valid = all(r["exit"] == 0 for pair in pairs for r in pair)
    print(f"\nwall (median of {len(pairs)} pairs): profiler on {statistics.median(on_walls):.2f} s, off "
          f"{statistics.median(off_walls):.2f} s: ratio {wall:.3f} (target <= {TARGET_RATIO})")
    print(f"tests while attached: on/off ratio {'n/a' if window is None else f'{window:.3f}'} "
          f"(per pair: {', '.join(f'{w:.3f}' for w in windows)})")
    if cpu_share is not None and cpu_of_run is not None:
        print(f"profiler CPU: {sum(cpu):.2f} s over {sum(attached):.1f} s attached ({cpu_share:.1%} of a CPU), "
              f"{cpu_of_run:.2%} of the on runs' wall time")
    print(f"flame graph names {PLANTED}: {'yes' if names else 'NO'} (every on run); spike flagged in both arms: "
          f"{'yes' if both else 'NO'}")
    common = meta | {"part": "helpers", "pairs": len(pairs), "tests": args.helper_tests,
                     "duration_s": args.helper_duration, "valid": valid}
    figures: dict[str, Any] = {"wall_on_median_s": round(statistics.median(on_walls), 2),
                               "wall_off_median_s": round(statistics.median(off_walls), 2),
                               "wall_ratio": round(wall, 4),
                               "window_ratio": None if window is None else round(window, 4),
                               "profiler_cpu_share_attached": None if cpu_share is None else round(cpu_share, 4),
                               "profiler_cpu_of_run_wall": None if cpu_of_run is None else round(cpu_of_run, 4),
                               "artefact_names_planted": names, "anomaly_both_arms": both}
    return [json.dumps(common | {"figure": name, "value": value}
                       | ({"target": f"<= {TARGET_RATIO}"} if name in ("wall_ratio", "window_ratio") else {}))
            for name, value in figures.items()]
