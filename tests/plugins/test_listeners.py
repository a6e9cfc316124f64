"""Plugins' listeners: each told what it listens to; one that raises is dropped, not the run."""

from __future__ import annotations

import pytest

from testfleet.plugins.listeners import PluginListeners


class OnlyResults:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    def on_result(self, result: str, done: int, total: int) -> None:
        self.seen.append((result, done, total))


class Breaks:
    calls = 0

    def on_result(self, result: str, done: int, total: int) -> None:
        self.calls += 1
        raise ValueError("bad listener")


def test_a_failing_listener_is_dropped_once_and_the_others_go_on(capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = OnlyResults(), Breaks()
    listeners = PluginListeners([("bad", bad), ("good", good)])
    listeners.on_collected(2, 0, 1)  # neither listens to it
    for done in (1, 2):
        listeners.on_result(f"r{done}", done, 2)
    assert good.seen == [("r1", 1, 2), ("r2", 2, 2)]
    assert bad.calls == 1
    warning = capsys.readouterr().err
    assert warning.count("WARNING") == 1 and "plugin 'bad'" in warning and "ValueError: bad listener" in warning
