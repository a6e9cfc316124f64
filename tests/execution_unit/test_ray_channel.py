"""The queue channel a worker uses inside a Ray actor behaves like a Connection."""

from __future__ import annotations

import queue
import threading

import pytest

ray_backend = pytest.importorskip("testfleet.execution.backends.ray", reason="Ray is not installed")


def test_poll_peeks_without_losing_order_and_none_ends_the_stream():
    inbox: queue.Queue = queue.Queue()
    channel = ray_backend._Channel(inbox, queue.Queue())
    assert channel.poll() is False
    inbox.put(("run", [1]))
    inbox.put(("flush",))
    assert channel.poll() is True and channel.poll() is True  # peeking twice takes nothing more
    assert channel.recv() == ("run", [1])
    assert channel.recv() == ("flush",)
    threading.Timer(0.05, inbox.put, args=(None,)).start()
    assert channel.poll(timeout=5) is True  # woken by the message, not by the timeout
    with pytest.raises(EOFError):
        channel.recv()


def test_send_goes_to_the_coordinators_side():
    outbox: queue.Queue = queue.Queue()
    channel = ray_backend._Channel(queue.Queue(), outbox)
    channel.send(("hello", "gw0", 1))
    assert outbox.get_nowait() == ("hello", "gw0", 1)


def test_an_actors_messages_travel_encoded_and_read_back_as_the_local_backends_do():
    from testfleet.execution import protocol as P
    from testfleet.execution.backends.base import HelloEvent, LostEvent, MessageEvent

    actor = object.__new__(ray_backend.PytestActor)  # its queues only: no pytest session behind it
    actor.outbox = queue.Queue()
    for message in (P.Hello("gw0", 5), P.Bye("gw0", None), P.Exited("gw0", 5, 0)):
        actor.outbox.put(message)
    pulled = actor.pull(1.0)
    assert [type(data) for data in pulled] == [bytes, bytes, bytes]
    backend = ray_backend.RayBackend([], workers=1)
    events: list = []
    ended = [backend._dispatch("gw0", P.decode(data), events) for data in pulled]
    assert ended == [False, False, True]  # the actor's session ended: its pull is not renewed
    assert events == [HelloEvent("gw0", 5), MessageEvent("gw0", P.Bye("gw0", None)), LostEvent("gw0", 0)]
