"""The orchestrator's exploration and telemetry bookkeeping, kept apart from the run loop.

:class:`ExplorationMixin` is part of :class:`~testfleet.execution.orchestrator.Orchestrator`: it
turns the explorer's proposals into new items of the run (``_explore_more``), drives the
minimisation of failures exploration found (``_minimizing``), and buffers telemetry series and
events for the recorder. It only uses the orchestrator's own state (items, cases, variants,
scheduler, recorder, plan).
"""

from __future__ import annotations

import json
import time
from typing import Any

from testfleet.execution import protocol as P
from testfleet.model import Variant
from testfleet.mutation.minimize_job import next_failure


class ExplorationMixin:
    # state provided by the Orchestrator
    explorer: Any
    min_job: Any
    min_fingerprints: set[str]
    minimized: list[dict[str, Any]]
    min_index: dict[int, Any]
    final_by_variant: dict[str, tuple[bool, str | None, str]]
    variant_map: dict[int, tuple[int, dict[str, Any]]]
    series: dict[str, list[Any]]
    events: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    items: list[dict[str, Any]]
    cases: list[Any]
    variants: list[Variant]
    scheduler: Any
    recorder: Any
    listener: Any
    plan: Any
    stopping: bool
    total: int
    tasks: dict[int, Any]
    instance_snapshots: dict[str, dict[str, Any]]
    config_snapshots: dict[str, str]
    run_info: Any
    slots: dict[str, Any]
    backend: Any
    final: dict[int, Any]


    def _minimizing(self, live: list[Any]) -> bool:
        """Drive minimisation once exploration is spent and settled: True while a job has work
        in flight."""
        if self.stopping or not self.explorer.settled:
            return False
        job = self.min_job
        if job is None:
            picked = next_failure(self.explorer.found, self.min_fingerprints,
                                  lambda f: self.explorer.cases[f["base"]].baseline)
            if picked is not None:
                self.min_fingerprints.add(picked[0])
                job = self.min_job = self.explorer.minimize_job(picked[1], self.plan.minimize_budget).start()
            if job is None:
                return False
        if job.done:
            event = job.to_event()
            event["instance_snapshot"] = self.instance_snapshots.get(job.variant_id)
            self.minimized.append(event)
            self._add_events([event])
            self.min_job = None
            return True
        params = job.pending(timeout=0.05)
        if params is not None:
            variant = Variant.of(self.cases[job.base], params, origin="minimize", parent_id=job.variant_id)
            known = self.final_by_variant.get(variant.variant_id)
            if known is not None:  # this run already ran that exact variant: reuse its outcome
                job.answer(*known)
                return True
            index = self._add_variant(job.base, variant)
            self.min_index[index] = job
            self.recorder.add_variants([variant])
            self._feed_all()
        return True

    def _exploration_events(self) -> list[dict[str, Any]]:
        """What exploration concluded, as events of the run: an A/B comparison's verdict, and
        one ``rule`` event per rule of the ruleset."""
        if not self.explorer.cases:
            return []
        self.explorer.flush()  # the last batch's outcomes count too
        verdict = getattr(self.explorer, "verdict_event", None)
        events = [verdict()] if verdict is not None else []
        # every rule of the ruleset, with how often its trigger held and what it found (or why
        # not): stored with the run, next to the variants it proposed
        for name, account in self.explorer.rules_report().items():
            found = account["new_failures"]
            events.append({"kind": "rule", "case_id": "", "variant_id": None, "nodeid": "", "rule": name,
                           **account, "message": f"rule {name}: trigger held {account['held']}/"
                           f"{account['evaluated']}, proposed {account['proposed']}, ran "
                           f"{account['executions']}, found {found}"
                           + (f" ({account['why']})" if account.get("why") else "")})
        return events

    def _failing_by_kind(self) -> dict[str, int]:
        """The final failing results (those the result line counts as failed or error) by what
        ran: a baseline test, an explored variant, or a minimisation check."""
        counts = {"baseline": 0, "explored": 0, "minimize": 0}
        for index, result in self.final.items():
            if not result.outcome.is_failure:
                continue
            if index not in self.variant_map:
                counts["baseline"] += 1
            else:
                counts["minimize" if self.variants[index].origin == "minimize" else "explored"] += 1
        return counts

    def _add_variant(self, base: int, variant: Variant) -> int:
        [index] = self.scheduler.extend(1, like=base)
        self.items.append({**self.items[base], "params": variant.params, "explored": True})
        self.cases.append(self.cases[base])
        self.variants.append(variant)
        self.variant_map[index] = (base, variant.params)
        self.total += 1
        return index

    def _explore_more(self, count: int) -> int:
        """Queue up to ``count`` explored variants (best mutation scores first)."""
        if self.stopping or self.explorer is None or not self.explorer.active:
            return 0
        taken = self.explorer.take()  # its own batch size: the stream must not depend on timing
        if self.explorer.provenance:  # why each variant was proposed: rule, trigger values, parent
            self._add_events(self.explorer.provenance)
            self.explorer.provenance = []
        for key, document in self.explorer.ruleset_updates():  # an edited ruleset, before its tasks
            for worker_id, slot in self.slots.items():
                if slot.ready and not slot.gone:
                    self.backend.send(worker_id, P.Ruleset(key, document))
            # every version the run used is kept in the store, whole, next to the variants it made
            self._add_events([{"kind": "ruleset", "case_id": "", "variant_id": None, "nodeid": "",
                               "path": key, "version": document.get("version"), "document": document,
                               "message": f"ruleset {key} version {document.get('version')}"}])
        new_variants = []
        for proposal, variant in taken:
            index = self._add_variant(proposal.base, variant)
            self.tasks[index] = self.explorer.task(proposal.base, variant, self._reference(proposal.base),
                                                   origin=variant.origin)
            new_variants.append(variant)
        if new_variants:
            self.recorder.add_variants(new_variants)
        return len(new_variants)

    def _snapshot_instance(self, index: int, instance: dict[str, Any]) -> None:
        """A failing explorable execution's SUT config, kept as a snapshot (once per distinct
        config) and named in an ``instance`` event: part of the failure's provenance."""
        variant, case = self.variants[index], self.cases[index]
        key = json.dumps(instance, sort_keys=True, default=str)
        snapshot_id = self.config_snapshots.get(key)
        if snapshot_id is None:
            try:
                snapshot_id = self.recorder.snapshot_config(self.run_info.run_id, str(instance["name"]),
                                                            dict(instance["config"]))
            except Exception as exc:  # noqa: BLE001 - the run goes on; the config stays in the event
                self._say(f"could not snapshot the config of instance {instance['name']}: {exc}")
                snapshot_id = ""
            self.config_snapshots[key] = snapshot_id
        info = {"instance": instance["name"], "config": instance["config"], "snapshot": snapshot_id}
        self.instance_snapshots[variant.variant_id] = info
        self._add_events([{"kind": "instance", "case_id": case.case_id, "variant_id": variant.variant_id,
                           "nodeid": self.items[index]["nodeid"], **info,
                           "message": f"instance {instance['name']} config snapshot {snapshot_id[:12]}"}])

    def _reference(self, base: int) -> dict[str, list[float]]:
        """The case's telemetry baselines, for the nearness of an execution to an anomaly."""
        monitor = self.plan.monitor
        return {} if monitor is None else monitor.reference(self.cases[base].case_id)

    def _add_series(self, worker_id: str, columns: dict[str, list[Any]]) -> None:
        n = len(columns.get("t", ()))
        self.series["worker"].extend([worker_id] * n)
        for key in ("t", "metric", "value"):
            self.series[key].extend(columns[key])
        self.listener.on_series(worker_id, columns)

    def _add_events(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        for event in events:
            event.setdefault("t", now)
        self.events.extend(events)
        self.anomalies.extend(e for e in events if e.get("kind") in ("outlier", "leak"))

