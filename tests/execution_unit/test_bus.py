"""The coordinator's event bus: typed messages reach their subscribers at once, in order, and
every one is kept as an event row for ``testfleet show RUN --events``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testfleet.execution.bus import Bus, BusMessage


@dataclass(frozen=True, kw_only=True)
class Replayed(BusMessage):
    topic = "replication"
    instance: str


@dataclass(frozen=True, kw_only=True)
class Granted(BusMessage):
    topic = "allocation"
    cpus: int


def test_subscribers_get_only_their_type_in_publication_order() -> None:
    rows: list[dict[str, Any]] = []
    bus = Bus(rows.extend, clock=iter([10.0, 11.0, 12.0]).__next__)
    seen: list[BusMessage] = []
    bus.subscribe(Replayed, seen.append)
    bus.publish(Replayed(action="replay", subject="t::a", reason="replayed on i1", instance="i1"))
    bus.publish(Granted(action="grant", subject="i1", reason="stressed", cpus=2))
    assert [m.action for m in seen] == ["replay"]
    assert [r["bus_seq"] for r in rows] == [1, 2]
    assert rows[1] == {"kind": "allocation", "action": "grant", "subject": "i1", "message": "stressed",
                       "cpus": 2, "bus_seq": 2, "t": 11.0}
    assert bus.messages(Granted) == [Granted(action="grant", subject="i1", reason="stressed", cpus=2)]


def test_a_handler_that_publishes_is_recorded_after_the_message_it_reacts_to() -> None:
    rows: list[dict[str, Any]] = []
    bus = Bus(rows.extend)
    bus.subscribe(Replayed, lambda m: bus.publish(Granted(action="grant", subject=m.instance,
                                                          reason="failures there", cpus=1)))
    bus.publish(Replayed(action="replay", subject="t::a", reason="x", instance="i2"))
    assert [(r["kind"], r["subject"]) for r in rows] == [("replication", "t::a"), ("allocation", "i2")]
    assert [e.seq for e in bus.log] == [1, 2]
