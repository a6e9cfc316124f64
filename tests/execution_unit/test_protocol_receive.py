"""The coordinator's reading of worker messages: classes it cannot import are named, not a crash."""

from __future__ import annotations

import pickle
from multiprocessing import Pipe

import pytest

from testfleet.execution import protocol as P


def test_a_message_naming_a_class_the_coordinator_cannot_import_raises_unreadable_message() -> None:
    sender, receiver = Pipe()
    # what a worker sends for {"level": Level.HIGH} where Level lives in a test module: a
    # reference to test_levels.Level called with 2 (pickle protocol 0, written out)
    payload = b"(dp0\nVlevel\np1\nctest_levels\nLevel\np2\n(I2\ntp3\nRp4\ns."
    sender.send_bytes(pickle.dumps(("result", 3, "x")))
    assert P.receive(receiver) == ("result", 3, "x")  # plain data reads as conn.recv() would
    sender.send_bytes(payload)
    with pytest.raises(P.UnreadableMessage) as caught:
        P.receive(receiver)
    assert caught.value.missing == ["test_levels.Level"]
    assert "No module named 'test_levels'" in caught.value.reason
    assert P.holds_stand_in(caught.value.message)
    assert "test_levels.Level" in repr(caught.value.message["level"])
    assert not P.holds_stand_in({"level": 2, "nested": [("a", {"b": None})]})
