"""Answers about a run the store has not got yet (submitted, running, or not merged), from the
run's events in the hub: its ``run``, ``collected``, ``result``, ``series`` and ``end`` events.

The hub keeps a run's events for the server's life, so a page cursor of a live list (the
event's sequence number) stays valid after the run is merged into the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from testfleet.service.api_models import ResultOut, RunOut
from testfleet.service.api_queries import ResultFilters, finite
from testfleet.service.hub import EventHub

__all__ = ["live_results", "live_run", "live_run_ids", "live_series"]

_RESULT_FIELDS = set(ResultOut.model_fields)


def _time(t: Any) -> datetime | None:
    return datetime.fromtimestamp(float(t), UTC) if isinstance(t, (int, float)) else None


def live_run(hub: EventHub, run_id: str) -> RunOut:
    """The run as its events tell it so far: status, command, collection, counts of final results."""
    events = hub.run_events(run_id, ("run", "collected", "result", "end"))
    run = RunOut(run_id=run_id, live=True, status="queued")
    counts: dict[str, int] = {}
    flaky = 0
    for event in events:
        kind = event["kind"]
        if kind == "run":
            run.status = str(event.get("status") or run.status)
            if isinstance(event.get("argv"), list):
                run.argv = [str(a) for a in event["argv"]]
            if isinstance(event.get("paths"), list):
                run.paths = [str(p) for p in event["paths"]]
            if run.started_at is None:
                run.started_at = _time(event.get("t"))
            if event.get("exit_code") is not None:
                run.exit_code = int(event["exit_code"])
        elif kind == "collected":
            run.collected = int(event.get("total") or 0)
            run.deselected = int(event.get("deselected") or 0)
            run.workers = int(event.get("workers") or 0)
        elif kind == "result" and event.get("final"):
            outcome = str(event.get("outcome"))
            counts[outcome] = counts.get(outcome, 0) + 1
            flaky += bool(event.get("flaky"))
        elif kind == "end" and event.get("exit_code") is not None:
            run.exit_code = int(event["exit_code"])
            run.finished_at = _time(event.get("t"))
    run.counts, run.flaky = counts, flaky
    if run.started_at is not None:
        end = run.finished_at or (_time(events[-1].get("t")) if events else None)
        run.duration = max(0.0, (end - run.started_at).total_seconds()) if end else 0.0
    return run


def live_run_ids(hub: EventHub) -> dict[str, float]:
    """Every run the hub has a ``run`` event of, with the time of its first one."""
    first: dict[str, float] = {}
    for event in hub.since(0, lambda e: e.get("kind") == "run"):
        t = event.get("t")
        first.setdefault(str(event.get("run_id")), float(t) if isinstance(t, (int, float)) else 0.0)
    return first


def live_results(hub: EventHub, run_id: str, filters: ResultFilters, limit: int, after: int | None,
                 ) -> list[tuple[list[Any], ResultOut]]:
    """Up to ``limit`` of the run's result events after sequence number ``after``, as results."""
    out: list[tuple[list[Any], ResultOut]] = []
    for event in hub.run_events(run_id, ("result",)):
        if (after is not None and event["seq"] <= after) or not filters.keeps(event):
            continue
        fields = {k: v for k, v in event.items() if k in _RESULT_FIELDS and v is not None}
        fields.update(run_id=run_id, nodeid=str(event.get("nodeid", "")),
                      outcome=str(event.get("outcome", "")), attempt=int(event.get("attempt") or 1),
                      final=bool(event.get("final", True)), flaky=bool(event.get("flaky", False)),
                      worker=str(event.get("worker") or ""), duration=finite(event.get("duration")) or 0.0,
                      message=str(event.get("message") or ""), finished_at=_time(event.get("t")))
        out.append(([event["seq"]], ResultOut.model_validate(fields)))
        if len(out) >= limit:
            break
    return out


def live_series(hub: EventHub, run_id: str, metric: str | None, worker: str | None, limit: int,
                after: list[Any] | None) -> list[tuple[list[Any], tuple[str, float, str, float | None]]]:
    """Up to ``limit`` samples of the run's ``series`` events (key: seq, index in the event)."""
    from fnmatch import fnmatchcase

    out: list[tuple[list[Any], tuple[str, float, str, float | None]]] = []
    for event in hub.run_events(run_id, ("series",)):
        seq = event["seq"]
        if after is not None and seq < after[0]:
            continue
        columns = [event.get(name) or [] for name in ("worker", "t", "metric", "value")]
        for i, (w, t, m, v) in enumerate(zip(*columns)):
            if after is not None and (seq, i) <= (after[0], after[1]):
                continue
            if (metric is not None and not fnmatchcase(str(m), metric)) or \
                    (worker is not None and str(w) != worker):
                continue
            out.append(([seq, i], (str(w), finite(t) or 0.0, str(m), finite(v))))
            if len(out) >= limit:
                return out
    return out
