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
