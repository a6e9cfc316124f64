"""``bench/collaboration.py --part replication``: failures replayed at once and classified (issue 20).

A generated suite with planted defects of each class, ``--cases`` tests per class (default 8),
run once by ``testfleet run --workers 2 --replicate-budget B`` against a small SUT (one instance per
worker) that serves its own configuration; ``config_space`` varies ``mode``, ``cache`` and
``threads``, the declared config is ``mode = "fast"``:

* ``test_det[n]``   always fails: **deterministic**;
* ``test_cfg[n]``   fails when the SUT runs ``mode = "fast"`` (read back from the SUT over HTTP):
  **configuration-specific**, the key that matters ``mode``;
* ``test_env[n]``   fails on worker ``gw{n % 2}`` only (its ``TESTFLEET_WORKER``), whatever the
  SUT config: **environment-specific**, naming the worker (half on each worker: the scheduler
  may send the whole block to either one, and with one broken worker for all of them a run
  whose block went to the other planted nothing of this class);
* ``test_flaky[n]`` fails with probability ``--flaky-rate`` (0.4), drawn from a seeded RNG keyed by
  the test, the worker, the execution's number in that worker and the bench seed: **flaky**.

Only the tests that fail in the run get replicated (about half of ``test_env``, ``--flaky-rate``
of ``test_flaky``). Figures, from the run's ``replication`` events: ``accuracy_pct`` (share of
classified failures whose class is the planted one, and for ``test_cfg`` whose keys are exactly
``mode``; target >= 90), the same per class, and ``executions_per_classification`` (the original
plus its replays, mean per class and overall).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

TARGET_PCT = 90.0
PLANTED = {"test_det": "deterministic", "test_cfg": "configuration-specific",
           "test_env": "environment-specific", "test_flaky": "flaky"}

SUT = '''
import argparse, json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
parser.add_argument("--config")
args = parser.parse_args()
with open(args.config) as fh:
    CONFIG = json.load(fh)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(CONFIG if self.path == "/config" else {"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
'''

SPACE = """dimensions:
  mode: {type: choice, values: [fast, safe, turbo]}
  cache: {type: choice, values: [lru, none]}
  threads: {type: int, min: 1, max: 8}
"""

TESTS = '''
import itertools
import json
import os
import random
import urllib.request

import pytest

CASES = {cases}
RATE = {rate}
SEED = {seed}
EXECUTION = itertools.count()  # executions in this worker process: a flaky test's draws differ


def sut_config(instance):
    with urllib.request.urlopen(instance.base_url + "/config", timeout=10) as response:
        return json.load(response)


@pytest.mark.parametrize("n", range(CASES))
def test_det(n):
    assert False, "planted: always broken"


@pytest.mark.parametrize("n", range(CASES))
def test_cfg(n, testfleet_instance):
    assert sut_config(testfleet_instance)["mode"] != "fast", "planted: broken in fast mode"


@pytest.mark.parametrize("n", range(CASES))
def test_env(n, testfleet_instance):
    sut_config(testfleet_instance)
    assert os.environ["TESTFLEET_WORKER"] != f"gw{{n % 2}}", "planted: broken on this worker"


@pytest.mark.parametrize("n", range(CASES))
def test_flaky(n):
    worker = os.environ["TESTFLEET_WORKER"]
    draw = random.Random(f"{{n}}|{{worker}}|{{next(EXECUTION)}}|{{SEED}}").random()
    assert draw >= RATE, "planted: flaky"
'''


def write_suite(folder: Path, cases: int, rate: float, seed: int) -> None:
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "sut.py").write_text(SUT)
    (folder / "sut.space.yaml").write_text(SPACE)
    (folder / "tests" / "test_planted.py").write_text(TESTS.format(cases=cases, rate=rate, seed=seed))
    command = json.dumps(f"{sys.executable} sut.py --port {{port}} --config {{config}}")
    (folder / "testfleet.toml").write_text(
        "[sut]\n"
        f"command = {command}\n"
        'ready = {http = "http://127.0.0.1:{port}/health"}\n'
        'config_file = "sut-{instance}.json"\n'
        'config = {mode = "fast", cache = "lru", threads = 4}\n'
        'config_space = "sut.space.yaml"\n'
        "start_timeout = 20.0\n")


def score(event: dict[str, Any]) -> tuple[str, bool]:
    """The planted class of the event's test, and whether the verdict matches it."""
    planted = PLANTED[str(event["nodeid"]).split("::")[-1].split("[")[0]]
    right = event["class"] == planted
    if planted == "configuration-specific":
        right = right and event["keys"] == ["mode"]
    if planted == "environment-specific":
        index = int(str(event["nodeid"]).rsplit("[", 1)[1].rstrip("]"))
        right = right and "worker" in event["keys"] and event["differences"]["worker"]["failing"] == [f"gw{index % 2}"]
    return planted, right


def part_replication(args: argparse.Namespace, meta: dict[str, Any]) -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="tf-replicate-"))
    try:
        folder = root / "suite"
        write_suite(folder, args.cases, args.flaky_rate, args.seed)
        store = root / "s.duckdb"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}
        env["PYTEST_ADDOPTS"] = "-p no:randomly"
        budget = 20 * 4 * args.cases  # enough for every failure: the figure is accuracy, not thrift
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "testfleet", "run", "--store", str(store), "--workers", "2",
                               "-q", "--seed", str(args.seed), "--replicate-budget", str(budget)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
        wall = time.monotonic() - started
        with Store.open(store, read_only=True) as db:
            run = db.get_run("last")
            events = TelemetryStore(db).events(run.run_id, ["replication"])
            failed = {r.nodeid for r in db.results(run.run_id) if r.final and r.outcome.is_failure}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_class: dict[str, list[tuple[bool, int]]] = {name: [] for name in PLANTED.values()}
    print(f"{'test':28} {'planted':24} {'classified':24} {'keys':18} {'executions':>10}")
    for event in sorted(events, key=lambda e: str(e["nodeid"])):
        planted, right = score(event)
        per_class[planted].append((right, int(event["executions"])))
        print(f"{str(event['nodeid']).split('::')[-1]:28} {planted:24} {event['class']:24} "
              f"{','.join(event['keys']):18} {event['executions']:>10}" + ("" if right else "   WRONG"))
    judged = [entry for entries in per_class.values() for entry in entries]
    accuracy = 100.0 * sum(r for r, _ in judged) / len(judged) if judged else None
    unclassified = len(failed) - len(events)
    print(f"\n{len(judged)} failures classified ({unclassified} failing tests not), "
          f"{accuracy if accuracy is None else round(accuracy, 1)} % right (target >= {TARGET_PCT:.0f} %); "
          f"run exit {proc.returncode}, {wall:.1f} s")
    if proc.returncode not in (0, 1):
        print(proc.stdout[-2000:] + proc.stderr[-2000:])
    common = meta | {"part": "replication", "cases": args.cases, "flaky_rate": args.flaky_rate,
                     "seed": args.seed, "workers": 2, "exit": proc.returncode}
    figures: dict[str, Any] = {
        "accuracy_pct": None if accuracy is None else round(accuracy, 1),
        "classified": len(judged), "unclassified_failures": unclassified, "wall_s": round(wall, 1),
        "executions_per_classification": round(sum(n for _, n in judged) / len(judged), 2) if judged else None}
    for name, entries in per_class.items():
        figures[f"accuracy_pct[{name}]"] = round(100.0 * sum(r for r, _ in entries) / len(entries), 1) \
            if entries else None
        figures[f"executions_per_classification[{name}]"] = round(sum(n for _, n in entries) / len(entries), 2) \
            if entries else None
        figures[f"classified[{name}]"] = len(entries)
    return [json.dumps(common | {"figure": name, "value": value}
                       | ({"target": f">= {TARGET_PCT:.0f}"} if name == "accuracy_pct" else {}))
            for name, value in figures.items()]
