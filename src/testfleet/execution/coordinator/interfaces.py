"""The declared seams between the coordinator's parts.

:class:`Host` is what the fleet, the recording and the exploration may use of the coordinator
(:class:`~testfleet.execution.coordinator.loop.Orchestrator` satisfies it): the run's shared
state and two actions, ``say`` and ``stop_all``. :class:`Exploring` is what the coordinator
asks of exploration (:class:`~testfleet.execution.coordinator.exploration.Exploration`), which
it holds only when the run explores (``--explore``); every call site checks for ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from testfleet.execution import protocol as P
    from testfleet.execution.backends.base import Backend
    from testfleet.execution.bus import Bus
    from testfleet.execution.coordinator.fleet import Fleet
    from testfleet.execution.coordinator.handing import Handing
    from testfleet.execution.coordinator.recording import Recording
    from testfleet.execution.coordinator.recovering import Recovery
    from testfleet.execution.coordinator.storing import StoreFeed
    from testfleet.execution.plan import Recorder, RunPlan
    from testfleet.execution.scheduler import Scheduler
    from testfleet.model import Case, Result, Run, Variant


class Exploring(Protocol):
    """Explored variants and the minimisation of what they found, as the coordinator drives them."""

    def register(self, selected: list[int]) -> None:
        """Tell the explorer which of the selected tests declare a space (once the plan exists)."""
        ...

    def rulesets(self) -> tuple[Any, ...]:
        """The rulesets every worker's mutation engine applies (sent in its configuration)."""
        ...

    def explored(self, batch: list[int]) -> dict[int, P.Explored]:
        """What the worker must know about the explored items of ``batch`` (params, task)."""
        ...

    def more(self, count: int) -> int:
        """Queue up to ``count`` explored variants; how many were queued."""
        ...

    def minimizing(self) -> bool:
        """Drive minimisation one step: True while a job has work in flight."""
        ...

    def on_final(self, index: int, result: Result, payload: P.TestResult,
                 anomalies: list[dict[str, Any]]) -> None:
        """An item's final result: the explorer learns from it, or a minimisation gets its answer."""
        ...

    def stop(self) -> None:
        """The run stops: end the minimisation in flight."""
        ...

    def conclusion(self) -> list[dict[str, Any]]:
        """What exploration concluded, as events of the run."""
        ...

    def outcome(self) -> dict[str, Any]:
        """What --explore did and found, for the run's outcome."""
        ...


class Host(Protocol):
    """The coordinator as its parts see it."""

    backend: Backend
    plan: RunPlan
    run_info: Run
    recorder: Recorder
    fleet: Fleet
    recording: Recording
    #: the store's subscription to the run's stream: results, samples and events in batches
    storing: StoreFeed
    #: the typed event bus the fleet's parts publish collaboration news on (execution.bus)
    bus: Bus
    recovery: Recovery
    handoff: Handing
    exploration: Exploring | None
    #: failures replayed and classified (coordinator.replicating.Replication); None: replication is off
    replication: Any
    #: helpers attached to SUT processes on anomalies (coordinator.probing.Probing); None: off
    probing: Any
    #: a stressed, failing instance gets more of the fleet (coordinator.specialising); None: off
    specialising: Any
    #: --chaos: the faults injected beside the loop (chaos.injector.Injector); None: no --chaos
    injector: Any
    scheduler: Scheduler | None
    #: the run's items (as collected, then explored ones appended), their cases and variants
    items: list[dict[str, Any]]
    cases: list[Case]
    variants: list[Variant]
    collected_items: list[P.CollectedItem]
    collect_errors: list[dict[str, Any]]
    selected: list[int]
    total: int
    stopping: bool
    warnings: list[dict[str, Any]]

    @property
    def queue(self) -> Scheduler:
        """The scheduler, which every part reaches only once the plan exists."""
        ...

    def say(self, text: str) -> None: ...

    def stop_all(self) -> None: ...
