"""The coordinator's parts that a run turns on, composed in when it does.

Exploration, replication, helpers on anomaly, specialisation and ``--chaos`` each come with
their own modules; a plain run imports none of them (the explorer alone brought the minimiser,
the space package and numpy into every run's start-up). The order matters: specialisation
hooks into the explorer, so exploration is composed first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testfleet.execution.coordinator.loop import Orchestrator
    from testfleet.execution.plan import RunPlan


def attach_optional_parts(host: Orchestrator, plan: RunPlan, chaos: Any) -> None:
    if plan.explorer is not None:
        from testfleet.execution.coordinator.exploration import Exploration

        host.exploration = Exploration(host, plan.explorer)
    # failures replayed at once and classified, when the run has a replication budget
    if plan.replicate is not None:
        from testfleet.execution.coordinator.replicating import Replication

        host.replication = Replication(host, plan.replicate)
    # helpers (profiler, memory, thread dump) attached to a SUT on an anomaly
    if plan.helpers is not None:
        from testfleet.execution.coordinator.probing import Probing

        host.probing = Probing(host, plan.helpers)
    # resources and explored work for a stressed instance where exploration finds failures
    if plan.specialise is not None:
        from testfleet.execution.coordinator.specialising import Specialising

        host.specialising = Specialising(host, plan.specialise)
    if chaos is not None:  # --chaos: faults injected beside the loop (a ChaosPlan)
        from testfleet.execution.chaos.injector import Injector

        host.injector = Injector(host, chaos.stream, chaos.folder, chaos.seed)
