"""The event hub: one sequence for every event, catch-up from any sequence number, and listeners
woken by events published from other threads (the runs' pipe readers)."""

from __future__ import annotations

import asyncio
import json
import threading

from hypothesis import given
from hypothesis import strategies as st

from testfleet.service.hub import EventHub


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=40), st.integers(0, 45))
def test_catching_up_from_any_point_gives_exactly_the_later_events(runs: list[str], after: int) -> None:
    hub = EventHub()
    for run_id in runs:
        hub.publish({"run_id": run_id, "kind": "result"})
    everything = hub.since(0)
    assert [e["seq"] for e in everything] == list(range(1, len(runs) + 1))
    assert hub.since(after) == [e for e in everything if e["seq"] > after]
    for run_id in set(runs):
        assert hub.run_events(run_id) == [e for e in everything if e["run_id"] == run_id]


def test_a_listener_is_woken_by_events_published_from_another_thread() -> None:
    hub = EventHub()
    hub.publish({"run_id": "r", "kind": "run"})

    async def listen() -> list[int]:
        subscription = hub.subscribe(0, lambda e: e["run_id"] == "r")
        seen: list[int] = []
        publisher = threading.Thread(target=lambda: [hub.publish({"run_id": run_id, "kind": "result"})
                                                     for run_id in ("r", "other", "r")])
        try:
            seen += [e["seq"] for e in await subscription.next_events()]  # the backlog first
            publisher.start()
            while len(seen) < 3:
                seen += [e["seq"] for e in await asyncio.wait_for(subscription.next_events(), 30)]
        finally:
            subscription.close()
            publisher.join()
        return seen

    assert asyncio.run(listen()) == [1, 2, 4]  # the other run's event (3) is not this listener's


@given(st.lists(st.dictionaries(st.sampled_from(["nodeid", "outcome", "message"]),
                                st.text(max_size=20) | st.integers() | st.none()), max_size=10))
def test_every_listener_gets_each_event_as_the_same_json_it_reads_back(fields: list[dict[str, object]]) -> None:
    hub = EventHub()
    published = [hub.publish({"run_id": "r", "kind": "result", **f}) for f in fields]
    first = [hub.encoded(e) for e in hub.since(0)]
    again = [hub.encoded(e) for e in hub.since(0)]  # a second page: the kept text
    assert [json.loads(text) for text in first] == published
    assert all(a is b for a, b in zip(first, again, strict=True))
