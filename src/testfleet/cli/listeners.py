"""testfleet's own listeners of a run, registered through the plugin hook
``testfleet_run_listener`` as a plugin's are: the terminal's console reporter and, for a run
started by ``testfleet serve`` (``--events-fd``), the event writer that streams the run to the
server. The CLI makes both sinks (it needs them again when the run ends: the console's summary,
the reports sent back) and hands them in ``outputs``; this turns them into the run's listener.
"""

from __future__ import annotations

from typing import Any

from testfleet.plugins import hookimpl

__all__ = ["testfleet_run_listener"]


@hookimpl
def testfleet_run_listener(run: Any, settings: Any, outputs: Any) -> Any:
    console, events = outputs.get("console"), outputs.get("events")
    if events is None:
        return console
    if console is None:
        return events
    from testfleet.plugins.listeners import PluginListeners

    return PluginListeners([], [console, events])  # built-ins: told in order, errors not swallowed
