#!/usr/bin/env python
"""The dashboard's latency and its cost: a generated suite submitted to a real ``testfleet serve``,
followed by headless Chromium pages.

    python bench/dashboard.py                       # 2,000 tests, 2 workers, 5 pages, 3 pairs
    python bench/dashboard.py --tests 500 --repeats 1

latency: every page records, for each ``result`` event it receives over its WebSocket,
``Date.now()/1000 - event.t`` (``window.__latencies``), ``t`` being when the child run made the
event (time.time(), the same clock on this machine). So the figure is the whole path: the child's
event pipe, the server's hub, the WebSocket and the page's JSON parsing. p50 and p95 over every
result of every page of every run with pages (target p95 < 250 ms). Beside it, the peers' update
intervals, as they state them (not measured here).

overhead: the wall time of ``testfleet submit`` (the run plus its upload and console) of the same
suite with 0 pages and with ``--pages`` pages following it, pairs alternating their order, after
one untimed warm-up run; the figure is the difference of the medians in percent (target <= 3 %).

``--clients ws`` follows the run with plain WebSocket clients instead of Chromium pages: each one
subscribes to the runs list (``/ws/events``) before the submit, then to the new run's stream
(``/ws/runs/{id}?batch=1``) exactly as the page does, and parses every message. That isolates
what *serving* the pages costs the machine that runs the tests (the hub, the sockets), from
rendering them, which a person's browser does on their own machine. ``--clients browser`` (the
default) keeps the pages on the same two cores as the run, so it charges the run with both.

Each page opens the dashboard at / before the submit and clicks the run in the live runs list as
soon as it appears, as a person would; the run's child needs a second or more to start its
workers, so the pages follow it before its first result. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http (which httpx imports)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

#: the peers' update intervals as their documentation states them (reference figures, not measured)
LOCUST_UI_POLL_S = 2.0  # Locust's web UI polls its stats every 2 s
RAY_DASHBOARD_REFRESH = "every few seconds"  # Ray's dashboard refreshes its views every few seconds

TEST_FILE = '''\
import hashlib

import pytest


@pytest.mark.parametrize("i", range({per_file}))
def test_digest(i):
    data = str(i).encode() * 200
    for _ in range(200):  # a little real work, ~1 ms
        data = hashlib.sha256(data).digest() * 8
    assert len(data) == 256
'''


def write_suite(root: Path, tests: int, per_file: int = 100) -> None:
    (root / "tests").mkdir(parents=True)
    files = max(1, tests // per_file)
    for k in range(files):
        n = per_file if k < files - 1 else tests - per_file * (files - 1)
        (root / "tests" / f"test_gen_{k:03d}.py").write_text(TEST_FILE.format(per_file=n))


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}
    env.update({"NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_ADDOPTS": "-p no:randomly"})
    return env


def start_server(directory: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "testfleet", "serve", "--port", "0", "--store", str(directory / "server.duckdb")]
    process = subprocess.Popen(argv, cwd=directory, env=child_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    if " on http://" not in first:
        process.kill()
        sys.exit(f"testfleet serve did not start: {first}{process.stdout.read()}")
    # keep reading its output so a full pipe never stalls it
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, first.rsplit(" on ", 1)[1].strip()


def submit(url: str, project: Path, workers: int) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "testfleet", "submit", "--server", url, "tests", "-n", str(workers)],
                          cwd=project, env=child_env(), capture_output=True, text=True, timeout=1800, check=False)
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def run_with_pages(browser: Any, url: str, project: Path, workers: int, pages: int, tests: int,
                   server_pid: int, earlier_runs: int) -> tuple[float, list[float], dict[str, float]]:
    """One submit followed by ``pages`` pages: its wall time, every page's latencies (s), and the
    CPU seconds the server and the browser spent from the submit to the pages' last update."""
    contexts = [browser.new_context() for _ in range(pages)]
    opened = [context.new_page() for context in contexts]
    for page in opened:
        page.goto(url + "/")
        page.wait_for_selector("[data-testid=connection].live")
        # every earlier run listed, so that the one to click is the new one
        page.wait_for_function(f"document.querySelectorAll('[data-run]').length >= {earlier_runs}")
    known = {page.evaluate("[...document.querySelectorAll('[data-run]')].map((a) => a.dataset.run).join(',')")
             for page in opened}
    seen_before = set(",".join(known).split(",")) - {""}
    follower_error: list[BaseException] = []
    result: dict[str, Any] = {}
    before = cpu_seconds(server_pid)  # the pages are loaded: what follows is following the run
    # the submit runs in a thread; Playwright's sync API stays on this one
    thread = threading.Thread(target=lambda: result.update(zip(("wall", "code", "out"),
                                                                submit(url, project, workers))))
    thread.start()
    try:
        for page in opened:  # click the new run as soon as the list shows it
            selector = "[data-run]" + "".join(f':not([data-run="{run}"])' for run in seen_before)
            page.click(selector, timeout=120_000)
        for page in opened:
            page.wait_for_function(f"document.getElementById('done').textContent === '{tests}'"
                                   " && document.getElementById('run-status').textContent !== 'running'",
                                   timeout=600_000, polling=200)
    except BaseException as exc:  # noqa: B036 - report, then stop the submit below
        follower_error.append(exc)
        for page in opened:  # what each page shows, to see where it stopped
            print("  page:", page.evaluate("['run-id', 'done', 'total', 'run-status', 'run-conn']"
                                           ".map((id) => document.getElementById(id).textContent)"), file=sys.stderr)
    thread.join()
    if result.get("code") != 0:
        sys.exit(f"the submit failed (exit {result.get('code')}):\n{str(result.get('out'))[-3000:]}")
    if follower_error:
        raise follower_error[0]
    after = cpu_seconds(server_pid)  # before the pages close: a closed page's CPU time is gone
    latencies = [x for page in opened for x in page.evaluate("window.__latencies")]
    for context in contexts:
        context.close()
    return float(result["wall"]), latencies, {k: after[k] - before[k] for k in after}


def follow_ws(ws_url: str, known: set[str], latencies: list[float], ready: threading.Barrier,
              failures: list[BaseException]) -> None:
    """One client: the runs list until a new run appears, then that run's events to its end."""
    from websockets.sync.client import connect

    try:
        run_id = None
        with connect(ws_url + "/ws/events?after=0") as listing:
            ready.wait()
            while run_id is None:
                for event in _events(listing.recv()):
                    if event.get("kind") == "run" and event["run_id"] not in known:
                        run_id = event["run_id"]
        with connect(f"{ws_url}/ws/runs/{run_id}?after=0&batch=1", max_size=None) as stream:
            while True:
                events = _events(stream.recv())
                now = time.time()
                latencies.extend(now - e["t"] for e in events if e.get("kind") == "result")
                if any(e.get("kind") == "end" for e in events):
                    return
    except BaseException as exc:  # noqa: B036 - reported by the caller
        failures.append(exc)
        ready.abort()


def _events(message: str | bytes) -> list[dict[str, Any]]:
    data = json.loads(message)
    return data if isinstance(data, list) else [data]


def run_with_clients(url: str, project: Path, workers: int, clients: int,
                     server_pid: int) -> tuple[float, list[float], dict[str, float]]:
    """One submit followed by ``clients`` WebSocket clients (see the module's docstring)."""
    import httpx

    known = {run["run_id"] for run in _all_runs(httpx, url)}
    latencies: list[float] = []
    failures: list[BaseException] = []
    ready = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=follow_ws, args=(url.replace("http", "ws", 1), known, latencies, ready,
                                                        failures), daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    before = cpu_seconds(server_pid)
    wall, code, out = submit(url, project, workers)
    for thread in threads:
        thread.join(timeout=120)
    after = cpu_seconds(server_pid)
    if code != 0:
        sys.exit(f"the submit failed (exit {code}):\n{out[-3000:]}")
    if failures:
        raise failures[0]
    return wall, latencies, {k: after[k] - before[k] for k in after}


def _all_runs(httpx: Any, url: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = httpx.get(url + "/runs", params={"cursor": cursor} if cursor else {}, timeout=30).json()
        runs.extend(page["items"])
        cursor = page.get("next")
        if not cursor:
            return runs


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU time so far of the server process itself (hub, WebSockets; not its runs) and of every
    Chromium process: where a watched run's extra time goes."""
    import psutil

    def used(process: Any) -> float:
        try:
            times = process.cpu_times()
            return float(times.user + times.system)
        except psutil.Error:
            return 0.0

    browsers = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]
    return {"server": used(psutil.Process(server_pid)), "chromium": sum(used(p) for p in browsers)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs with 0 pages and with --pages pages, each")
    parser.add_argument("--clients", choices=("browser", "ws"), default="browser",
                        help="follow with Chromium pages on this machine, or with plain WebSocket clients")
    args = parser.parse_args()

    executable = None
    if args.clients == "browser":  # plain WebSocket clients need no browser
        from testfleet.reporting.coverage_plot import find_browser

        executable = find_browser()
        if executable is None:
            sys.exit("needs Chromium (apt install chromium) or BROWSER_PATH")
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-dashboard-") as tmp:
        directory = Path(tmp)
        project = directory / "project"
        write_suite(project, args.tests)
        server, url = start_server(directory)
        try:
            with contextlib.ExitStack() as stack:
                browser: Any = None
                if executable is not None:
                    from playwright.sync_api import sync_playwright

                    playwright = stack.enter_context(sync_playwright())
                    browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
                    stack.callback(browser.close)
                warm, code, out = submit(url, project, args.workers)  # untimed: caches, the store's first rows
                if code != 0:
                    sys.exit(f"the warm-up submit failed (exit {code}):\n{out[-3000:]}")
                walls: dict[int, list[float]] = {0: [], args.pages: []}
                server_cpu: dict[int, list[float]] = {0: [], args.pages: []}
                latencies: list[float] = []
                for rep in range(args.repeats):
                    order = (0, args.pages) if rep % 2 == 0 else (args.pages, 0)
                    for pages in order:
                        if pages == 0:
                            before = cpu_seconds(server.pid)
                            wall, code, out = submit(url, project, args.workers)
                            if code != 0:
                                sys.exit(f"the submit failed (exit {code}):\n{out[-3000:]}")
                            after = cpu_seconds(server.pid)
                            cpu = {k: after[k] - before[k] for k in after}
                        elif args.clients == "ws":
                            wall, got, cpu = run_with_clients(url, project, args.workers, pages, server.pid)
                            latencies.extend(got)
                        else:
                            wall, got, cpu = run_with_pages(browser, url, project, args.workers, pages, args.tests,
                                                            server.pid, earlier_runs=1 + 2 * rep + order.index(pages))
                            latencies.extend(got)
                        walls[pages].append(wall)
                        # (a 0-page run's Chromium figure would only count pages closing from the run before)
                        shown = pages and args.clients == "browser"
                        browser_cpu = f", chromium {cpu['chromium']:.2f} s" if shown else ""
                        server_cpu[pages].append(cpu["server"])
                        print(f"  run {rep + 1}, {pages} pages: {wall:.2f} s (CPU: server {cpu['server']:.2f} s"
                              f"{browser_cpu})", flush=True)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()

    ms = [1000 * x for x in latencies]
    p50, p95, worst = percentile(ms, 50), percentile(ms, 95), max(ms)
    bare, watched = statistics.median(walls[0]), statistics.median(walls[args.pages])
    overhead = 100 * (watched - bare) / bare
    print()
    print(f"suite: {args.tests} tests on {args.workers} workers, {args.pages} "
          f"{'pages (Chromium, on this machine)' if args.clients == 'browser' else 'WebSocket clients'}, "
          f"{args.repeats} runs each way (warm-up {warm:.2f} s, untimed)")
    who = "browser" if args.clients == "browser" else "client"
    print(f"result -> {who} latency over {len(ms)} results: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {worst:.1f} ms (target p95 < 250 ms)")
    print(f"  reference, as stated (not measured): Locust's web UI polls every {LOCUST_UI_POLL_S * 1000:.0f} ms; "
          f"Ray's dashboard refreshes {RAY_DASHBOARD_REFRESH}")
    print(f"wall time, median: 0 pages {bare:.2f} s {sorted(round(w, 2) for w in walls[0])}, "
          f"{args.pages} pages {watched:.2f} s {sorted(round(w, 2) for w in walls[args.pages])}: "
          f"overhead {overhead:+.1f} % (target <= 3 %)")
    # the server's own CPU (hub, sockets; not its runs) for the followed runs, over their wall time:
    # a figure the machine's noise moves far less than the wall time's difference
    serving = statistics.median(server_cpu[args.pages]) - statistics.median(server_cpu[0])
    print(f"server CPU, median: 0 pages {statistics.median(server_cpu[0]):.2f} s, {args.pages} pages "
          f"{statistics.median(server_cpu[args.pages]):.2f} s: serving them costs {serving:+.2f} CPU s, "
          f"{100 * serving / watched:+.1f} % of one core over the run")
    print(json.dumps({"bench": "dashboard", "clients": args.clients, "tests": args.tests,
                      "workers": args.workers, "pages": args.pages,
                      "server_cpu_0_s": server_cpu[0], "server_cpu_pages_s": server_cpu[args.pages],
                      "repeats": args.repeats, "results": len(ms), "latency_p50_ms": round(p50, 1),
                      "latency_p95_ms": round(p95, 1), "latency_max_ms": round(worst, 1),
                      "wall_0_pages_s": walls[0], "wall_pages_s": walls[args.pages],
                      "overhead_pct": round(overhead, 2), "locust_ui_poll_s": LOCUST_UI_POLL_S}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
