#!/usr/bin/env python
"""Paging the results of a 100,000-result run through the read API, against OFFSET paging.

    python bench/api_pages.py                  # 100,000 results, pages of 100
    python bench/api_pages.py --results 20000 --limit 500

1. Builds a store with one run of ``--results`` results (bulk inserts through the Store API:
   ``append_results`` in batches of 10,000), 5% of them failures with a traceback.
2. Serves the read API under uvicorn on 127.0.0.1 in a child process (the server owns the store,
   as ``testfleet serve`` does), and pages through ``GET /runs/{id}/results?limit=N`` with httpx
   from the first page to the last, timing every request: p50, p95 and max per page.
3. The reference, measured in the same run on the same file once the server has exited: the same
   pages read in SQL by the API's keyset query and by ``LIMIT N OFFSET k`` over the same order,
   at every tenth page (interleaved, so drift hits both alike), and the time of a
   ``testfleet show``-style full read (``Store.results``). Ratios are printed beside them.

Target (issue 18, reported, never enforced): p95 < 100 ms a page. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http (httpx imports it): drop this folder
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from testfleet.model import Case, Outcome, Result, Run, RunStatus, Variant  # noqa: E402
from testfleet.store.db import Store  # noqa: E402

RUN_ID = "bench-run"
TRACEBACK = "".join(f"  File \"tests/test_mod.py\", line {i}, in helper_{i}\n    step({i})\n" for i in range(8))


def build_store(path: Path, count: int) -> float:
    """One run of ``count`` results (seconds taken); nodeids repeat every 20,000 (retries)."""
    began = time.perf_counter()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with Store.open(path) as store:
        store.begin_run(Run(run_id=RUN_ID, started_at=start, workers=8))
        cases = [Case(case_id=f"c{i}", nodeid=f"tests/test_{i // 500}.py::test_{i}") for i in range(min(count, 20_000))]
        variants = [Variant.of(c) for c in cases]
        store.add_cases(cases, run_id=RUN_ID)
        store.add_variants(variants)
        for lo in range(0, count, 10_000):
            batch = []
            for i in range(lo, min(lo + 10_000, count)):
                case, variant = cases[i % len(cases)], variants[i % len(cases)]
                failed = i % 20 == 7
                finished = start + timedelta(milliseconds=3 * i)
                batch.append(Result(run_id=RUN_ID, variant_id=variant.variant_id, case_id=case.case_id,
                                    nodeid=case.nodeid, attempt=1 + i // len(cases), worker=f"w{i % 8}",
                                    outcome=Outcome.failed if failed else Outcome.passed, duration=0.003,
                                    started_at=finished - timedelta(milliseconds=3), finished_at=finished,
                                    message="assert 41 == 42" if failed else "",
                                    longrepr=TRACEBACK if failed else "", final=i + len(cases) >= count))
            store.append_results(batch)
        store.finish_run(Run(run_id=RUN_ID, started_at=start, status=RunStatus.finished, exit_code=1,
                             finished_at=start + timedelta(milliseconds=3 * count), workers=8))
    return time.perf_counter() - began


def serve(store_path: str, fd: int) -> None:
    """The child: the read API over the store, under uvicorn on the inherited listening socket."""
    import uvicorn
    from fastapi import FastAPI

    from testfleet.service import api_read
    from testfleet.service.errors import install_error_handlers
    from testfleet.service.hub import EventHub
    from testfleet.service.state import ServiceState

    app = FastAPI()
    store = Store.open(store_path)
    app.state.service = ServiceState(store=store, hub=EventHub(), workdir=Path(store_path).parent)
    install_error_handlers(app)
    app.include_router(api_read.router)
    # socket(fileno=) reads the real family (uvicorn's own fd= takes it for AF_UNIX, so asyncio
    # would leave Nagle on and every response would wait for a delayed ACK)
    sock = socket.socket(fileno=fd)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def page_over_http(port: int, limit: int) -> tuple[list[float], int]:
    import httpx

    times: list[float] = []
    seen = 0
    cursor: str | None = None
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        client.get("/runs/last").raise_for_status()  # the connection and the first query warm
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            began = time.perf_counter()
            response = client.get(f"/runs/{RUN_ID}/results", params=params)
            body = response.json()
            times.append(time.perf_counter() - began)
            response.raise_for_status()
            seen += len(body["items"])
            cursor = body["next"]
            if cursor is None:
                return times, seen


def sql_reference(path: Path, limit: int, count: int) -> dict[str, float]:
    """Keyset vs OFFSET pages in SQL at every tenth page, and a full read, on the same file."""
    from testfleet.service import api_queries
    from testfleet.store.db import _RESULT_COLS, _select_list

    keyset: list[float] = []
    offset: list[float] = []
    order = f"coalesce(epoch_us(finished_at), {api_queries.NO_TIME}), nodeid, attempt, rowid"
    offset_sql = (f"SELECT {_select_list(_RESULT_COLS)} FROM results WHERE run_id = $1 "
                  f"ORDER BY {order} LIMIT $2 OFFSET $3")
    filters = api_queries.ResultFilters()
    with Store.open(path, read_only=True) as store:
        after = None
        for page in range(0, count // limit + 1):
            rows = api_queries.result_page(store, RUN_ID, filters, limit + 1, after)
            if page % 10 == 0:  # the same page both ways, timed back to back
                began = time.perf_counter()
                timed = api_queries.result_page(store, RUN_ID, filters, limit + 1, after)
                keyset.append(time.perf_counter() - began)
                began = time.perf_counter()
                by_offset = store.query(offset_sql, [RUN_ID, limit, page * limit])
                offset.append(time.perf_counter() - began)
                assert [r.nodeid for _, r in timed[:limit]] == [row[3] for row in by_offset], page
            if len(rows) <= limit:
                break
            after = rows[limit - 1][0]
        began = time.perf_counter()
        everything = store.results(RUN_ID)
        full = time.perf_counter() - began
        assert len(everything) == count
    return {"sql_keyset_p50_ms": 1e3 * statistics.median(keyset), "sql_keyset_p95_ms": 1e3 * percentile(keyset, 0.95),
            "sql_offset_p50_ms": 1e3 * statistics.median(offset), "sql_offset_p95_ms": 1e3 * percentile(offset, 0.95),
            "sql_offset_last_ms": 1e3 * offset[-1], "sql_keyset_last_ms": 1e3 * keyset[-1],
            "full_read_s": full}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--serve", nargs=2, metavar=("STORE", "FD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="tf-api-pages-") as tmp:
        path = Path(tmp) / "store.duckdb"
        built = build_store(path, args.results)
        print(f"store: {args.results:,} results written in {built:.1f}s")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(path), str(sock.fileno())],
                                 pass_fds=[sock.fileno()])
        try:
            times, seen = page_over_http(port, args.limit)
        finally:
            child.terminate()
            child.wait(timeout=30)
            sock.close()
        assert seen == args.results, (seen, args.results)
        reference = sql_reference(path, args.limit, args.results)
    p50, p95 = 1e3 * statistics.median(times), 1e3 * percentile(times, 0.95)
    figures = {"results": args.results, "limit": args.limit, "pages": len(times), "http_p50_ms": p50,
               "http_p95_ms": p95, "http_max_ms": 1e3 * max(times), "http_total_s": sum(times), **reference}
    print(f"HTTP keyset pages of {args.limit} over {len(times)} pages: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {figures['http_max_ms']:.1f} ms (target p95 < 100 ms: {'met' if p95 < 100 else 'NOT met'}); "
          f"all pages {figures['http_total_s']:.1f}s")
    print(f"SQL, same pages (every 10th): keyset p50 {reference['sql_keyset_p50_ms']:.2f} ms, "
          f"p95 {reference['sql_keyset_p95_ms']:.2f} ms; OFFSET p50 {reference['sql_offset_p50_ms']:.2f} ms, "
          f"p95 {reference['sql_offset_p95_ms']:.2f} ms (OFFSET/keyset p95 "
          f"{reference['sql_offset_p95_ms'] / reference['sql_keyset_p95_ms']:.1f}x; last page "
          f"{reference['sql_offset_last_ms']:.2f} vs {reference['sql_keyset_last_ms']:.2f} ms)")
    print(f"full read of the run (Store.results, as `testfleet show`): {reference['full_read_s']:.2f}s "
          f"= {reference['full_read_s'] * 1e3 / p95:.0f}x one HTTP page's p95")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
