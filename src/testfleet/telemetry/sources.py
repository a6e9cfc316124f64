"""testfleet's own telemetry source, registered through the plugin hook
``testfleet_add_telemetry_sources`` as a plugin's is: ``system``, the whole machine's CPU % and
memory % (``system.cpu_percent``, ``system.mem_percent``).

The probes of the processes a sampler watches (the worker itself, its SUT's process tree, the
SUT's Prometheus endpoint) are not sources: they follow the pids and URLs the worker tells its
sampler as instances start and stop (:mod:`testfleet.telemetry.sampler_process`).
"""

from __future__ import annotations

from testfleet.plugins import SourceSpec, hookimpl
from testfleet.telemetry.sampler import SystemProbe

__all__ = ["testfleet_add_telemetry_sources"]


@hookimpl
def testfleet_add_telemetry_sources() -> list[SourceSpec]:
    return [SourceSpec("system", SystemProbe, description="the machine's CPU % and memory %", raw=True)]
