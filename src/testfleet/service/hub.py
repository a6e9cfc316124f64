"""The server's event stream: every event of every run gets the next sequence number, is kept,
and is pushed to whoever listens. A listener that (re)connects passes the last sequence number it
saw and first gets everything after it, so a reloading page misses nothing.

Events come from threads (each child run's pipe reader); listeners are WebSocket handlers on the
server's event loop. Publishing wakes each waiting listener through its own loop
(``call_soon_threadsafe``), so nothing polls.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EventHub", "Subscription"]

Event = dict[str, Any]


class Subscription:
    """One listener: ``await next_events()`` returns the events after the last one it returned."""

    def __init__(self, hub: EventHub, after: int, accept: Callable[[Event], bool]) -> None:
        self.hub = hub
        self.after = after
        self.accept = accept
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        # set before each look at the hub, so a publish either is seen by that look or wakes it;
        # a listener busy sending (or pausing to batch) is not woken once per event
        self.waiting = False

    def wake(self) -> None:
        if self.waiting:
            self.waiting = False
            self.loop.call_soon_threadsafe(self.ready.set)

    async def next_events(self) -> list[Event]:
        while True:
            self.ready.clear()
            self.waiting = True
            events = self.hub.since(self.after, self.accept)
            if events:
                self.waiting = False
                self.after = events[-1]["seq"]
                return events
            await self.ready.wait()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """Sequenced events of every run (kept in memory for the server's life)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._by_run: dict[str, list[Event]] = {}
        self._subscribers: set[Subscription] = set()
        self._wire: dict[int, str] = {}  # seq -> the event as JSON, encoded once for every listener

    def encoded(self, event: Event) -> str:
        """``event`` (one this hub numbered) as compact JSON: encoded at its first send and kept, so
        five pages following a run cost one encoding per event, not five."""
        seq = event["seq"]
        text = self._wire.get(seq)
        if text is None:
            text = self._wire[seq] = json.dumps(event, separators=(",", ":"))
        return text

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._events[-1]["seq"] if self._events else 0

    def publish(self, event: Event) -> Event:
        """Number and keep ``event`` (a dict with ``run_id`` and ``kind``) and wake the listeners."""
        with self._lock:
            event = {**event, "seq": len(self._events) + 1}
            self._events.append(event)
            self._by_run.setdefault(str(event.get("run_id")), []).append(event)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if subscriber.accept(event):  # a runs list is not woken by every result of every run
                subscriber.wake()
        return event

    def since(self, after: int, accept: Callable[[Event], bool] | None = None) -> list[Event]:
        """Events with ``seq > after`` (that ``accept`` keeps), oldest first."""
        with self._lock:
            tail = self._events[max(0, after):]  # seq n is at index n - 1
        return [e for e in tail if accept is None or accept(e)]

    def run_events(self, run_id: str, kinds: tuple[str, ...] | None = None) -> list[Event]:
        with self._lock:
            events = list(self._by_run.get(run_id, ()))
        return [e for e in events if kinds is None or e["kind"] in kinds]

    def knows(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._by_run

    def subscribe(self, after: int, accept: Callable[[Event], bool]) -> Subscription:
        """A listener (call from the event loop) for events after ``after`` that ``accept`` keeps."""
        subscription = Subscription(self, after, accept)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)
