"""Recording: each result of the run, its retry, its flakiness, published on the run's stream.

Each result goes through the run's breakers, and a failed test runs again where the recovery
policy says (:mod:`.recovering`: a crashed one once, on another worker; one that crashed a worker
twice, never); a test that failed and then passed is marked flaky. Every result, telemetry sample
and event row is then published on the bus (:mod:`testfleet.execution.stream`), where the store
feed (:mod:`.storing`), the console and the dashboard's writer take it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from testfleet.execution.stream import EventsRaised, ResultArrived, SeriesSampled
from testfleet.model import FAILURE_OUTCOMES, Case, Outcome, Result, Variant

if TYPE_CHECKING:
    from testfleet.execution import protocol as P
    from testfleet.execution.coordinator.interfaces import Host


class Recording:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.results: list[Result] = []
        self.final: dict[int, Result] = {}  # index -> its final result
        self.attempts: dict[int, int] = {}
        self.crashes: dict[int, int] = {}  # index -> workers it crashed
        self.failed_once: set[int] = set()
        self.failures = 0
        self.anomalies: list[dict[str, Any]] = []

    def record(self, index: int, worker_id: str, payload: P.TestResult, late_teardown: bool = False) -> Result:
        """One result. ``late_teardown``: the error of fixtures torn down after a stop, reported as
        its own row against the same attempt, as pytest reports "1 failed, 1 error"."""
        host = self.host
        item = host.items[index]
        host.warnings.extend(payload.warnings)
        attempt = self.attempts.get(index, 0) + (0 if late_teardown else 1)
        self.attempts[index] = attempt
        outcome = Outcome(payload.outcome)
        case, variant = host.cases[index], host.variants[index]
        start, stop = payload.start, payload.stop
        result = Result(
            run_id=host.run_info.run_id, variant_id=variant.variant_id, case_id=case.case_id,
            nodeid=item["nodeid"], attempt=attempt, worker=worker_id, outcome=outcome,
            duration=payload.duration,
            started_at=datetime.fromtimestamp(start, UTC) if start else None,
            finished_at=datetime.fromtimestamp(stop, UTC) if stop else datetime.now(UTC),
            when=payload.when, message=payload.message,
            longrepr=payload.longrepr, stdout=payload.stdout,
            stderr=payload.stderr, log=payload.log,
            categories=payload.categories or [outcome.value],
            fingerprint=payload.fingerprint, file=item["file"], line=item["line"],
            keywords=item.get("keywords", []), phases=payload.phases,
            telemetry=payload.telemetry or {},
        )
        if payload.series:
            self.add_series(worker_id, payload.series)
        # under --chaos, a failure while the proxy failed the test's requests on purpose is the injection's
        blamed = host.recovery.blame(index, worker_id, result, payload.injected) \
            if payload.injected and not late_teardown else None
        if not late_teardown:
            host.recovery.observe(index, worker_id, result, blamed)
        if host.replication is not None and host.replication.is_replay(index):
            # a replay is evidence about another execution: stored, never retried nor counted
            result.final = False
            self.results.append(result)
            host.bus.publish(ResultArrived(result, len(self.final), host.total, progress=False))
            if not late_teardown:
                host.replication.on_replay(index, worker_id, result, payload)
            return result
        if outcome in FAILURE_OUTCOMES and not late_teardown:
            # a failure the injection caused is no sign of a flaky test when the retry passes
            if blamed is None:
                self.failed_once.add(index)
            if not host.stopping and host.recovery.retry(index, worker_id, result, self.crashes.get(index, 0),
                                                         blamed):
                result.final = False
        elif index in self.failed_once and not late_teardown and outcome in (
                Outcome.passed, Outcome.xfailed, Outcome.skipped):
            result.flaky = True
        self.results.append(result)
        if result.final and not late_teardown:
            self.final[index] = result
            anomalies: list[dict[str, Any]] = []
            monitor = host.plan.monitor
            if monitor is not None and result.telemetry and outcome is Outcome.passed:
                anomalies = monitor.observe(
                    case_id=case.case_id, variant_id=variant.variant_id, nodeid=result.nodeid,
                    worker=worker_id, telemetry=result.telemetry, duration=result.duration)
                self.add_events(anomalies)
                if anomalies and host.probing is not None:  # helpers attach to the SUT (coordinator.probing)
                    host.probing.on_anomalies(worker_id, payload, anomalies)
            if host.exploration is not None:
                host.exploration.on_final(index, result, payload, anomalies)
            if host.replication is not None:
                host.replication.on_final(index, worker_id, result, payload, anomalies)
            if host.specialising is not None:
                host.specialising.on_final(index, worker_id, result, payload, anomalies)
            if outcome in FAILURE_OUTCOMES:
                self.failures += 1
                if host.plan.maxfail and self.failures >= host.plan.maxfail and not host.stopping:
                    host.say(f"stopping after {self.failures} failure{'s' if self.failures != 1 else ''}")
                    host.stop_all()
        host.bus.publish(ResultArrived(result, len(self.final), host.total))
        return result

    def record_synthetic(self, case: Case, variant: Variant, outcome: Outcome, *, worker: str, when: str,
                         message: str, longrepr: str, line: int | None = None) -> None:
        """A final result decided without running the test (it never reaches a worker)."""
        now = datetime.now(UTC)
        result = Result(run_id=self.host.run_info.run_id, variant_id=variant.variant_id, case_id=case.case_id,
                        nodeid=case.nodeid, worker=worker, outcome=outcome, started_at=now, finished_at=now,
                        when=when, message=message, longrepr=longrepr, categories=[outcome.value],
                        file=case.file, line=line)
        self.results.append(result)
        self.host.bus.publish(ResultArrived(result, len(self.final), self.host.total, progress=False))

    def add_series(self, worker_id: str, columns: P.Series) -> None:
        self.host.bus.publish(SeriesSampled(worker_id, columns))

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Rows for the run's ``events`` table (the bus's messages come here too, as its sink)."""
        if not events:
            return
        now = time.time()
        for event in events:
            event.setdefault("t", now)
        self.anomalies.extend(e for e in events if e.get("kind") in ("outlier", "leak"))
        self.host.bus.publish(EventsRaised(events))
