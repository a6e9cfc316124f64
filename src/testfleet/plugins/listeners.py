"""The run's listeners, built in and plugins', as one listener of the run's event stream.

Every listener comes through the hook ``testfleet_run_listener``: the built-in ones (the console,
and the service's event writer when the run has an event pipe; :mod:`testfleet.cli.listeners`)
first, then the plugins'. A listener may define only the methods it cares about (``on_result``
most often). A plugin's listener that raises is reported once on stderr and dropped: a plugin's
bug never stops a run. A built-in listener's error is the run's, as it always was.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["PluginListeners", "run_listener"]


class PluginListeners:
    """Tells every listener that has the method, built-in ones first, then in plugin order."""

    def __init__(self, listeners: list[tuple[str, Any]], builtin: list[Any] | None = None) -> None:
        self.listeners = list(listeners)
        self.builtin = list(builtin or [])

    def _each(self, method: str, *args: Any) -> None:
        for own in self.builtin:
            call = getattr(own, method, None)
            if call is not None:
                call(*args)
        for entry in list(self.listeners):
            plugin, listener = entry
            call = getattr(listener, method, None)
            if call is None:
                continue
            try:
                call(*args)
            except Exception as exc:  # noqa: BLE001 - the run goes on without this listener
                self.listeners.remove(entry)
                sys.stderr.write(f"WARNING: the listener of plugin {plugin!r} failed in {method} "
                                 f"and was dropped: {type(exc).__name__}: {exc}\n")

    def on_terminal(self, options: dict[str, Any]) -> None:  # -r, -q as pytest saw them (the console)
        self._each("on_terminal", options)

    def on_collected(self, total: int, deselected: int, workers: int) -> None:
        self._each("on_collected", total, deselected, workers)

    def on_running(self, worker_id: str, nodeid: str | None) -> None:
        self._each("on_running", worker_id, nodeid)

    def on_result(self, result: Any, done: int, total: int) -> None:
        self._each("on_result", result, done, total)

    def on_message(self, text: str) -> None:
        self._each("on_message", text)

    def on_exploring(self, budget: str) -> None:
        self._each("on_exploring", budget)

    def on_worker(self, worker_id: str, state: str, detail: str) -> None:
        self._each("on_worker", worker_id, state, detail)

    def on_series(self, worker_id: str, columns: Any) -> None:  # a protocol.Series
        self._each("on_series", worker_id, columns)


def run_listener(run: Any, settings: Any, outputs: dict[str, Any]) -> PluginListeners:
    """Every listener of this run as one: the built-in ones from ``outputs`` (``console``, and
    ``events``: the service's event writer or None) and the installed plugins'. A plugin that
    breaks the registry here (its workers are already up) costs its listeners only, with one
    warning; the console stays."""
    from testfleet.plugins.manager import registry
    from testfleet.plugins.specs import PluginError

    try:
        found = registry().run_listeners(run, settings, outputs)
    except PluginError as exc:
        sys.stderr.write(f"WARNING: {exc}\n")
        import importlib

        from testfleet.plugins.manager import BUILTINS

        builtin = importlib.import_module(BUILTINS["testfleet_run_listener"])  # without the registry
        own = [builtin.testfleet_run_listener(run, settings, outputs)]
        return PluginListeners([], [x for x in own if x is not None])
    return PluginListeners([(plugin, listener) for plugin, listener, own in found if not own],
                           [listener for _plugin, listener, own in found if own])
