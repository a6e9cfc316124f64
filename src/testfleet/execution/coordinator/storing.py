"""The store's side of the run's stream: results, telemetry and events batched to the recorder.

The coordinator is the only writer of results during a run. It reaches the store through the
:class:`~testfleet.execution.plan.Recorder` the caller hands it, and only through this feed,
which subscribes to the stream (:mod:`testfleet.execution.stream`: :class:`ResultArrived`,
:class:`SeriesSampled`, :class:`EventsRaised`) like the console does, and writes in batches
(every ``STORE_FLUSH_SECONDS`` or ``STORE_FLUSH_ROWS`` results; the loop calls :meth:`flush`
each pass). Between two batches, every arrival goes to the recorder's write-ahead journal when
it keeps one (store/journal.py), so that kill -9 of the coordinator loses nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from testfleet.execution.stream import EventsRaised, ResultArrived, SeriesSampled

if TYPE_CHECKING:
    from testfleet.execution.bus import Bus
    from testfleet.execution.plan import Recorder
    from testfleet.model import Result

STORE_FLUSH_SECONDS = 1.0
STORE_FLUSH_ROWS = 2000


def _no_series() -> dict[str, list[Any]]:
    return {"worker": [], "t": [], "metric": [], "value": []}


class StoreFeed:
    def __init__(self, bus: Bus, recorder: Recorder, run_id: str) -> None:
        self.recorder = recorder
        self.run_id = run_id
        # a recorder that keeps a write-ahead journal (store/journal.py) says so with these two
        # methods: looked up once here, not on every pass of the loop
        self._journal = getattr(recorder, "journal_arrivals", None)
        self._checkpoint = getattr(recorder, "checkpoint", None)
        self.buffer: list[Result] = []
        self.series = _no_series()
        self.events: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.journaled = (0, 0)  # how much of buffer and events went to the journal
        bus.subscribe(ResultArrived, self._result)
        bus.subscribe(SeriesSampled, self._series)
        bus.subscribe(EventsRaised, self._events)

    def _result(self, event: ResultArrived) -> None:
        self.buffer.append(event.result)

    def _series(self, event: SeriesSampled) -> None:
        columns = event.columns
        self.series["worker"].extend([event.worker] * len(columns.get("t", ())))
        for key in ("t", "metric", "value"):
            self.series[key].extend(columns[key])

    def _events(self, event: EventsRaised) -> None:
        self.events.extend(event.events)

    def flush(self, force: bool = False) -> None:
        # Every pass: what arrived goes to the recorder's write-ahead journal, if it keeps one,
        # so that kill -9 before the next batch below loses nothing.
        recorder = self.recorder
        if self._journal is not None:
            self._journal(self.buffer[self.journaled[0]:], self.events[self.journaled[1]:])
            self.journaled = (len(self.buffer), len(self.events))
        now = time.monotonic()
        pending = len(self.buffer) + len(self.series["t"]) // 50 + len(self.events)
        if pending and (force or len(self.buffer) >= STORE_FLUSH_ROWS
                        or now - self.last_flush >= STORE_FLUSH_SECONDS):
            # results first: a reader that sees a run's telemetry also sees its results
            if self.buffer:
                recorder.append_results(self.buffer)
                self.buffer = []
            if self.series["t"]:
                recorder.append_series(self.run_id, self.series)
                self.series = _no_series()
            if self.events:
                recorder.append_events(self.run_id, self.events)
                self.events = []
            self.journaled = (0, 0)
            if self._checkpoint is not None:  # the journal's lines are all in the store now
                self._checkpoint()
            self.last_flush = now
