"""The coordinator's event bus: typed messages reach their subscribers at once, in order, and
every one is kept as an event row for ``testfleet show RUN --events``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testfleet.execution.bus import Bus, BusMessage
from testfleet.execution.bus_relay import BusLog


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


def test_a_tap_gets_the_messages_published_before_it_then_each_new_one() -> None:
    tapped: list[list[dict[str, Any]]] = []
    bus = Bus(clock=iter([1.0, 2.0, 3.0]).__next__)
    bus.publish(Replayed(action="replay", subject="t::a", reason="x", instance="i1"))
    bus.publish(Replayed(action="replay", subject="t::a", reason="y", instance="i2"))
    bus.tap(tapped.append)
    bus.publish(Granted(action="grant", subject="i1", reason="z", cpus=1))
    assert [[r["bus_seq"] for r in rows] for rows in tapped] == [[1, 2], [3]]
    assert tapped[1][0] == bus.log[-1].to_event()


def test_the_ray_actors_log_hands_out_the_rows_after_a_sequence_number() -> None:
    log = BusLog()  # the actor's class, without Ray: what read_bus(since) returns
    rows: list[dict[str, Any]] = []
    bus = Bus(rows.extend)
    bus.tap(log.append)
    for n in range(3):
        bus.publish(Granted(action="grant", subject=f"i{n}", reason="r", cpus=n))
    assert log.since() == rows and [r["subject"] for r in log.since(2)] == ["i2"]
