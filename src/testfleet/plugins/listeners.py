"""Plugins' result listeners, as one listener of the run's event stream.

A plugin's listener may define only the methods it cares about (``on_result`` most often). A
listener that raises is reported once on stderr and dropped: a plugin's bug never stops a run.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["PluginListeners", "plugin_listeners"]


class PluginListeners:
    """Tells every plugin listener that has the method, in plugin order."""

    def __init__(self, listeners: list[tuple[str, Any]]) -> None:
        self.listeners = list(listeners)

    def _each(self, method: str, *args: Any) -> None:
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

    def on_series(self, worker_id: str, columns: dict[str, list[Any]]) -> None:
        self._each("on_series", worker_id, columns)


def plugin_listeners(run: Any, settings: Any) -> PluginListeners | None:
    """The installed plugins' listeners for this run, or None when no plugin listens."""
    from testfleet.plugins.manager import registry
    from testfleet.plugins.specs import PluginError

    try:
        found = registry().run_listeners(run, settings)
    except PluginError as exc:  # the workers are up: the run goes on without plugin listeners
        sys.stderr.write(f"WARNING: {exc}\n")
        return None
    return PluginListeners(found) if found else None
