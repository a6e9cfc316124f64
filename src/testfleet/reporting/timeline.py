"""The collaboration timeline of a run (``testfleet show RUN --events``), read from its event rows.

Every message of the coordinator's bus (:mod:`testfleet.execution.bus`) is an event row with its
topic as ``kind``, a ``bus_seq``, a ``subject`` and an ``action``: replays and verdicts, hand-offs,
allocation changes, helpers attached, breakers, recovery steps and injected faults. The timeline
lists them one a line, in the order they were published: time since the run started, topic (and
action), subject, and the message.

Runs recorded before the bus have the same kinds of event without ``bus_seq`` or ``subject``: they
are listed too, ordered by time, their subject taken from the fields they do have.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["COLLABORATION_KINDS", "Entry", "timeline", "timeline_lines"]

#: the kinds of event the timeline shows by default: the bus's topics, which runs recorded before
#: the bus stored without ``bus_seq`` (any row with a ``bus_seq`` is shown whatever its kind)
COLLABORATION_KINDS = ("replay", "replication", "handoff", "allocation", "helper", "breaker", "recovery", "fault")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    offset: float  # seconds since the run started
    topic: str
    action: str
    subject: str
    message: str
    seq: int | None  # the bus's sequence number; None for an event recorded before the bus


def _subject(event: Mapping[str, Any]) -> str:
    if event.get("subject") is not None:
        return str(event["subject"])
    for key in ("nodeid", "target", "worker"):  # what an event from before the bus is about
        if event.get(key):
            return str(event[key])
    return ""


def _seq(event: Mapping[str, Any]) -> int | None:
    value = event.get("bus_seq")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def timeline(events: Iterable[Mapping[str, Any]], started: float,
             kinds: Sequence[str] | None = None) -> list[Entry]:
    """The run's events as timeline entries. ``started``: the run's start (epoch seconds);
    ``kinds``: the event kinds to keep (any kind, anomalies included), else the collaboration
    events (every bus message, and the bus's topics in runs recorded before it)."""
    wanted = set(kinds) if kinds else None
    kept = [e for e in events
            if (str(e.get("kind")) in wanted if wanted is not None
                else _seq(e) is not None or e.get("kind") in COLLABORATION_KINDS)]
    seqs = [_seq(e) for e in kept]
    if kept and all(s is not None for s in seqs):
        order = sorted(range(len(kept)), key=lambda i: seqs[i] or 0)  # publication order
    else:  # rows from before the bus, or other kinds asked for beside it: by time, the bus's order within one
        order = sorted(range(len(kept)), key=lambda i: (_time(kept[i]), seqs[i] if seqs[i] is not None else -1))
    return [Entry(offset=_time(kept[i]) - started, topic=str(kept[i].get("kind") or ""),
                  action=str(kept[i].get("action") or ""), subject=_subject(kept[i]),
                  message=str(kept[i].get("message") or ""), seq=seqs[i]) for i in order]


def _time(event: Mapping[str, Any]) -> float:
    try:
        t = float(event.get("t") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return t if math.isfinite(t) else 0.0


def timeline_lines(entries: Sequence[Entry]) -> list[str]:
    """One line per entry: ``+12.34s  handoff/start  tests/t.py::test_slow  running 3.1 s on gw0 ...``.
    A message that starts with its subject is not made to say it twice."""
    if not entries:
        return []
    what = [f"{e.topic}/{e.action}" if e.action else e.topic for e in entries]
    what_width = max(len(w) for w in what)
    subject_width = min(max(len(e.subject) for e in entries), 60)
    lines = []
    for entry, label in zip(entries, what, strict=True):
        message = entry.message.removeprefix(f"{entry.subject}: ") if entry.subject else entry.message
        lines.append(f"{entry.offset:+9.2f}s  {label:<{what_width}}  {entry.subject:<{subject_width}}  "
                     f"{' '.join(message.split())}".rstrip())
    return lines
