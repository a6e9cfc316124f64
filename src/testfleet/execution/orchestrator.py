"""Where the coordinator used to live; it is now the :mod:`testfleet.execution.coordinator` package.

Kept so that ``from testfleet.execution.orchestrator import Orchestrator, RunPlan`` goes on working.
"""

from testfleet.execution.coordinator import Orchestrator
from testfleet.execution.plan import Listener, Recorder, RunOutcome, RunPlan

__all__ = ["Listener", "Orchestrator", "Recorder", "RunOutcome", "RunPlan"]
