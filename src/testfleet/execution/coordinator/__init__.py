"""The coordinator: one run's loop, the same for every backend.

* :mod:`.loop` — :class:`Orchestrator`, the event loop, with one handler per worker message;
* :mod:`.planning` — from the collection to the plan (selection, requirement pools, scheduler);
* :mod:`.fleet` — the workers' slots: spawning, feeding and flushing, replacing, timeouts;
* :mod:`.recording` — results, retries, flaky marking, and the buffer to the store;
* :mod:`.exploration` — explored variants and minimisation, composed in when the run explores;
* :mod:`.interfaces` — the Protocols between them (``Host``, ``Exploring``).

Which test runs next is the :class:`~testfleet.execution.scheduler.Scheduler`'s (one
:class:`~testfleet.execution.scheduler.DistPolicy` per ``--dist`` mode).
"""

from testfleet.execution.coordinator.fleet import Slot
from testfleet.execution.coordinator.loop import Orchestrator

__all__ = ["Orchestrator", "Slot"]
