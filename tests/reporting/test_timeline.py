"""The collaboration timeline of ``testfleet show RUN --events``, from a run's event rows."""

from __future__ import annotations

from typing import Any

from testfleet.reporting.timeline import timeline, timeline_lines

START = 1000.0


def bus_row(seq: int, t: float, kind: str, action: str, subject: str, message: str, **data: Any) -> dict[str, Any]:
    return {"kind": kind, "action": action, "subject": subject, "message": message, "bus_seq": seq, "t": t, **data}


def test_bus_messages_are_listed_in_publication_order_with_their_time_since_the_start() -> None:
    rows = [
        # a handler's reply published in the same instant, but the clock read it a hair earlier
        bus_row(2, START + 3.0, "allocation", "grant", "gw1", "more CPU for gw1"),
        bus_row(1, START + 3.0001, "replication", "verdict", "t.py::test_a", "replicated t.py::test_a: flaky"),
        {"kind": "outlier", "t": START + 1.0, "worker": "gw1", "message": "cpu outlier"},  # not collaboration
        bus_row(3, START + 12.5, "handoff", "start", "t.py::test_b",
                "t.py::test_b: running 9.0 s on gw0; a speculative copy starts on gw1"),
    ]
    entries = timeline(rows, START)
    assert [(e.seq, e.topic) for e in entries] == [(1, "replication"), (2, "allocation"), (3, "handoff")]
    lines = timeline_lines(entries)
    assert lines[0].split(None, 3)[:3] == ["+3.00s", "replication/verdict", "t.py::test_a"]
    assert lines[0].endswith("replicated t.py::test_a: flaky")
    # a message that starts with its subject does not say it twice
    assert lines[2].split() == ["+12.50s", "handoff/start", "t.py::test_b", "running", "9.0", "s", "on", "gw0;", "a",
                                "speculative", "copy", "starts", "on", "gw1"]
    # columns line up, so the eye can run down topics and subjects
    assert len({line.index("t.py") for line in (lines[0], lines[2])}) == 1


def test_events_of_a_run_from_before_the_bus_are_listed_by_time_with_a_subject_of_their_own() -> None:
    rows = [
        {"kind": "breaker", "t": START + 5.0, "worker": "gw0", "target": "gw0", "from": "closed", "to": "open",
         "message": "worker gw0: breaker open after 2 timeouts"},
        {"kind": "replay", "t": START + 2.0, "worker": "gw1", "nodeid": "t.py::test_a",
         "message": "replay of v on gw1"},
        {"kind": "handoff", "action": "capacity", "t": START + 1.0, "worker": "scheduler",
         "message": "capacity: 1 test found a node in 1 s"},
        {"kind": "instance", "t": START, "worker": "gw0", "message": "SUT instance up"},  # not collaboration
    ]
    entries = timeline(rows, START)
    assert [(e.topic, e.subject, e.offset, e.seq) for e in entries] == [
        ("handoff", "scheduler", 1.0, None), ("replay", "t.py::test_a", 2.0, None), ("breaker", "gw0", 5.0, None)]


def test_kinds_filter_to_the_kinds_asked_for_anomalies_included() -> None:
    rows = [bus_row(1, START + 1, "handoff", "start", "t.py::a", "copy"),
            bus_row(2, START + 2, "fault", "inject", "gw0", "chaos: kill_worker on gw0"),
            {"kind": "outlier", "t": START + 1.5, "nodeid": "t.py::a", "message": "cpu\noutlier"}]
    assert [e.topic for e in timeline(rows, START, ["fault"])] == ["fault"]
    both = timeline(rows, START, ["handoff", "outlier"])
    assert [e.topic for e in both] == ["handoff", "outlier"]  # mixed with rows from outside the bus: by time
    assert timeline_lines(both)[1].endswith("t.py::a  cpu outlier")  # one line, whatever the message holds
    assert timeline(rows, START, ["allocation"]) == [] and timeline_lines([]) == []
