"""What a run is asked to do and what it gives back: the orchestrator's contracts.

:class:`RunPlan` is filled in by the caller from settings and the store's history;
:class:`Recorder` (results into the store) and :class:`Listener` (progress for a console or the
dashboard) are how the orchestrator reaches the outside without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from testfleet.execution.breakers import BreakerSettings
from testfleet.execution.handoff import HandoffSettings
from testfleet.execution.protocol import Series, WorkerConfig
from testfleet.model import Case, Result, Run, Variant


class Recorder(Protocol):
    def begin_run(self, run: Run, cases: list[Case], variants: list[Variant]) -> None: ...
    def append_results(self, results: list[Result]) -> None: ...
    #: telemetry samples as columns: worker, t (epoch seconds), metric, value
    def append_series(self, run_id: str, columns: dict[str, list[Any]]) -> None: ...
    #: variants created during the run (explored ones)
    def add_variants(self, variants: list[Variant]) -> None: ...
    #: anomalies and other events (dicts: kind, case_id, metric, value, baseline, message...)
    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None: ...
    #: a SUT instance's config as a snapshot linked to the run (role ``sut:<snapshot id>``); its id
    def snapshot_config(self, run_id: str, instance: str, config: dict[str, Any]) -> str: ...


class Listener(Protocol):
    def on_collected(self, total: int, deselected: int, workers: int) -> None: ...
    def on_running(self, worker_id: str, nodeid: str | None) -> None: ...
    def on_result(self, result: Result, done: int, total: int) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_exploring(self, budget: str) -> None: ...
    def on_worker(self, worker_id: str, state: str, detail: str) -> None: ...
    def on_series(self, worker_id: str, columns: Series) -> None: ...


class NullListener:
    def on_collected(self, total: int, deselected: int, workers: int) -> None: ...
    def on_running(self, worker_id: str, nodeid: str | None) -> None: ...
    def on_result(self, result: Result, done: int, total: int) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_exploring(self, budget: str) -> None: ...
    def on_worker(self, worker_id: str, state: str, detail: str) -> None: ...
    def on_series(self, worker_id: str, columns: Series) -> None: ...


@dataclass
class RunPlan:
    """What to run: filled in by the CLI from settings and the store's history."""

    workers: int
    dist: str = "load"
    timeout: float | None = None
    reruns: int = 0
    maxfail: int = 0
    restart_budget: int = 4
    #: [tool.testfleet.breakers]: circuit breakers and escalating recovery (execution.recovery)
    breakers: BreakerSettings = field(default_factory=BreakerSettings)
    #: [tool.testfleet.handoff]: speculative copies of stragglers (execution.handoff)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    history: dict[str, float] = field(default_factory=dict)
    last_failed: set[str] = field(default_factory=set)
    failed_first: bool = True
    only_last_failed: bool = False
    continue_on_collection_errors: bool = False
    requirement_rules: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    strict_requirements: bool = False
    #: judges each result's telemetry (a telemetry.monitor.RunMonitor); None: no anomaly watch
    monitor: Any = None
    #: proposes explored variants once the baseline is dispatched (an execution.explorer.Explorer)
    explorer: Any = None
    #: --resume: every result the run stored before (only tests without a final one run again)
    resume: list[Result] | None = None
    #: [tool.testfleet.replicate] with its budget resolved (execution.replication); None: no replays
    replicate: Any = None
    #: [tool.testfleet.helpers] resolved for the run (execution.probes.settings.HelperPlan); None: off
    helpers: Any = None
    #: [tool.testfleet.specialise] when the run specialises (execution.specialisation); None: off
    specialise: Any = None
    minimize_budget: int = 100  # executions spent minimising each distinct failure exploration found
    #: what every worker is told in reply to its Hello (its worker count and rulesets filled in)
    worker: WorkerConfig = field(default_factory=WorkerConfig)


@dataclass
class RunOutcome:
    run: Run
    results: list[Result]
    collect_errors: list[dict[str, Any]]
    not_run: list[str]
    messages: list[str]
    interrupted: bool = False
    warnings: list[dict[str, Any]] = field(default_factory=list)
    collector_exit: int | None = None  # set when pytest ended before collecting (usage error, --co)
    collector_output: str = ""
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    fatal: tuple[int, str] | None = None  # (exit code, message): a worker's session could not go on
    exploration: dict[str, Any] | None = None  # what --explore did and found
    resilience: list[dict[str, Any]] = field(default_factory=list)  # breaker and recovery events
    replication: dict[str, Any] | None = None  # replays spent and failures classified
