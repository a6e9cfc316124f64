"""Telemetry in the store: time series, events (anomalies, instance starts), baselines' history.

Series are kept long (run, worker, t, metric, value): a run's samples arrive in batches from every
worker, and a long table takes them with one columnar insert whatever metrics a SUT exposes.
Times are epoch seconds (DOUBLE), so no time-zone handling is involved. Reads aggregate in DuckDB
(per metric statistics, downsampled series for charts), never row by row in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testfleet.store.db import Store

if TYPE_CHECKING:  # numpy loads where telemetry is read, not with every command
    import numpy as np

__all__ = ["MetricStats", "TelemetryStore"]

_EVENT_FIELDS = ("kind", "case_id", "variant_id", "nodeid", "worker", "metric", "value",
                 "baseline", "score", "message")


@dataclass(frozen=True)
class MetricStats:
    metric: str
    worker: str
    samples: int
    mean: float
    max: float
    p95: float
    first: float
    last: float


class TelemetryStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ---------------------------------------------------------------------------
    def append_series(self, run_id: str, worker: Sequence[str], t: Sequence[float],
                      metric: Sequence[str], value: Sequence[float]) -> None:
        if not len(t):
            return
        self.store.write("store telemetry", [(
            ("INSERT INTO telemetry SELECT $1, unnest($2::VARCHAR[]), unnest($3::DOUBLE[]), "
            "unnest($4::VARCHAR[]), unnest($5::DOUBLE[])"),
            [run_id, list(worker), list(map(float, t)), list(metric), list(map(float, value))])])

    def append_events(self, run_id: str, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        cols: dict[str, list[Any]] = {name: [e.get(name) for e in events] for name in _EVENT_FIELDS}
        times = [float(e.get("t", 0.0)) for e in events]
        data = [json.dumps({k: v for k, v in e.items() if k not in _EVENT_FIELDS and k != "t"},
                           default=str) for e in events]
        self.store.write("store events", [(
            ("INSERT INTO events SELECT $1, unnest($2::DOUBLE[]), unnest($3::VARCHAR[]), "
            "unnest($4::VARCHAR[]), unnest($5::VARCHAR[]), unnest($6::VARCHAR[]), "
            "unnest($7::VARCHAR[]), unnest($8::VARCHAR[]), unnest($9::DOUBLE[]), "
            "unnest($10::DOUBLE[]), unnest($11::DOUBLE[]), unnest($12::VARCHAR[]), "
            "unnest($13::VARCHAR[])::JSON"),
            [run_id, times, cols["kind"], cols["case_id"], cols["variant_id"], cols["nodeid"],
             [w or "" for w in cols["worker"]], cols["metric"], _floats(cols["value"]),
             _floats(cols["baseline"]), _floats(cols["score"]),
             [m or "" for m in cols["message"]], data])])

    # -- reading ---------------------------------------------------------------------------
    def stats(self, run_id: str, *, pattern: str | None = None, by_worker: bool = True,
              ) -> list[MetricStats]:
        """Per metric (and worker): samples, mean, max, p95, first and last value in time."""
        where, params = _where(run_id, pattern)
        worker = "worker" if by_worker else "''"
        rows = self.store.query(
            f"SELECT metric, {worker} AS w, count(*), avg(value), max(value), "
            "quantile_cont(value, 0.95), arg_min(value, t), arg_max(value, t) "
            f"FROM telemetry {where} GROUP BY metric, w ORDER BY metric, w", params)
        return [MetricStats(str(m), str(w), int(n), float(a), float(x), float(p), float(f), float(last))
                for m, w, n, a, x, p, f, last in rows]

    def series(self, run_id: str, *, pattern: str | None = None,
               max_points: int = 2000) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """(metric, worker) -> (t, value), each series averaged into at most ``max_points`` buckets."""
        where, params = _where(run_id, pattern)
        span = self.store.query(f"SELECT min(t), max(t) FROM telemetry {where}", params)
        if not span or span[0][0] is None:
            return {}
        t0, t1 = float(span[0][0]), float(span[0][1])
        width = max((t1 - t0) / max(max_points, 1), 1e-6)
        data = self.store.fetch_numpy(
            f"SELECT metric, worker, least(floor((t - {t0!r}) / {width!r}), {max(max_points, 1) - 1}) AS b, "
            f"avg(t) AS t, avg(value) AS v "
            f"FROM telemetry {where} GROUP BY metric, worker, b ORDER BY metric, worker, b", params)
        import numpy as np

        out: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        metrics, workers = data["metric"], data["worker"]
        if not len(metrics):
            return out
        keys = np.char.add(np.char.add(metrics.astype(str), "\x00"), workers.astype(str))
        change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        for start, stop in zip(np.r_[0, change], np.r_[change, len(keys)], strict=True):
            out[(str(metrics[start]), str(workers[start]))] = (
                np.asarray(data["t"][start:stop], dtype=float), np.asarray(data["v"][start:stop], dtype=float))
        return out

    def events(self, run_id: str, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT t, kind, case_id, variant_id, nodeid, worker, metric, value, baseline, score, "
            "message, data::VARCHAR FROM events WHERE run_id = $1"
            + (" AND list_contains($2, kind)" if kinds else "") + " ORDER BY t, kind",
            [run_id, list(kinds)] if kinds else [run_id])
        out = []
        for row in rows:
            event = dict(zip(("t",) + _EVENT_FIELDS, row[:11], strict=True))
            event.update(json.loads(row[11]) if row[11] else {})
            out.append(event)
        return out

    def history(self, case_ids: Sequence[str] | None = None, *, per_case: int = 30,
                ) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """Per case, the telemetry summaries and durations of its latest final results in
        finished runs (oldest first): what a new run's anomaly baselines start from."""
        rows = self.store.query(
            "SELECT case_id, telemetry::VARCHAR, duration FROM ("
            "  SELECT r.case_id, r.telemetry, r.duration, u.started_at, r.rowid AS rid, "
            "         row_number() OVER (PARTITION BY r.case_id ORDER BY u.started_at DESC, r.rowid DESC) AS k "
            "  FROM results r JOIN runs u USING (run_id) "
            "  WHERE r.final AND u.finished_at IS NOT NULL AND r.outcome = 'passed' "
            + ("AND list_contains($2, r.case_id) " if case_ids is not None else "")
            + ") WHERE k <= $1 ORDER BY case_id, started_at, rid",
            [per_case, list(case_ids)] if case_ids is not None else [per_case])
        out: dict[str, list[tuple[dict[str, Any], float]]] = {}
        for case_id, telemetry, duration in rows:
            out.setdefault(case_id, []).append((json.loads(telemetry) if telemetry else {}, float(duration)))
        return out


def _floats(values: list[Any]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def _where(run_id: str, pattern: str | None) -> tuple[str, list[Any]]:
    if not pattern:
        return "WHERE run_id = $1", [run_id]
    return "WHERE run_id = $1 AND metric GLOB $2", [run_id, pattern]  # the same globs as fnmatch
