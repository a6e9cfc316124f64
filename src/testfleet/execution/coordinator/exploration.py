"""Exploration in the run: explored variants become new items, and failures they find are minimised.

:class:`Exploration` is composed into the coordinator only when the run explores; it meets the
:class:`~testfleet.execution.coordinator.interfaces.Exploring` interface the coordinator calls,
and uses of the coordinator only what :class:`~testfleet.execution.coordinator.interfaces.Host`
declares. It turns the explorer's proposals into new items of the run (``more``), drives the
minimisation of failures exploration found (``minimizing``), keeps the SUT config of failing
explored executions as snapshots, and tells the worker each explored item's task (``explored``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from testfleet.execution import protocol as P
from testfleet.execution.stream import ExploringStarted
from testfleet.model import Result, Variant
from testfleet.mutation.minimize_job import next_failure

if TYPE_CHECKING:
    from testfleet.execution.coordinator.interfaces import Host


class Exploration:
    def __init__(self, host: Host, explorer: Any) -> None:
        self.host = host
        self.explorer = explorer  # an execution.explorer.Explorer (or its A/B variant)
        self.variant_map: dict[int, tuple[int, dict[str, Any]]] = {}  # explored index -> (item, params)
        self.tasks: dict[int, Any] = {}  # index -> the ExploreTask its worker's mutation engine gets
        self.instance_snapshots: dict[str, dict[str, Any]] = {}  # failing explored variant -> its SUT config
        self.config_snapshots: dict[str, str] = {}  # an instance config (JSON) -> its snapshot id
        self.min_job: Any = None  # the failing variant being minimised (mutation.minimize_job)
        self.min_index: dict[int, Any] = {}
        self.min_fingerprints: set[str] = set()  # failures minimised (minimize_job.next_failure)
        self.minimized: list[dict[str, Any]] = []
        # variant id -> (failed, failure fingerprint, message), for minimisation
        self.final_by_variant: dict[str, tuple[bool, str | None, str]] = {}

    # -- the Exploring interface --------------------------------------------------------------
    def register(self, selected: list[int]) -> None:
        host = self.host
        explorable = {i for i in selected if host.items[i].get("space")}
        selected_items = [host.items[i] if i in explorable else {**host.items[i], "space": None}
                          for i in range(len(host.items))]
        if not self.explorer.register(selected_items, host.cases, host.variants):
            host.say("--explore: no selected test declares a space (@testfleet.explore); "
                     "only the baseline runs")
        else:
            host.bus.publish(ExploringStarted(self.explorer.budget.describe()))
            for base in self.explorer.cases:
                self.tasks[base] = self.explorer.task(base, host.variants[base], self.reference(base),
                                                      baseline=True)

    def rulesets(self) -> tuple[Any, ...]:
        return tuple(self.explorer.rulesets())

    def explored(self, batch: list[int]) -> dict[int, P.Explored]:
        explored: dict[int, P.Explored] = {}
        for i in batch:
            if i in self.variant_map or i in self.tasks:
                base, params = self.variant_map.get(i, (i, None))
                explored[i] = P.Explored(base, params, self.tasks.get(i))
        return explored

    def more(self, count: int) -> int:
        """Queue up to ``count`` explored variants (best mutation scores first)."""
        host = self.host
        if host.stopping or not self.explorer.active:
            return 0
        taken = self.explorer.take()  # its own batch size: the stream must not depend on timing
        if self.explorer.provenance:  # why each variant was proposed: rule, trigger values, parent
            host.recording.add_events(self.explorer.provenance)
            self.explorer.provenance = []
        for key, document in self.explorer.ruleset_updates():  # an edited ruleset, before its tasks
            for worker_id, slot in host.fleet.slots.items():
                if slot.ready and not slot.gone:
                    host.backend.send(worker_id, P.Ruleset(key, document))
            # every version the run used is kept in the store, whole, next to the variants it made
            host.recording.add_events([{"kind": "ruleset", "case_id": "", "variant_id": None, "nodeid": "",
                                        "path": key, "version": document.get("version"), "document": document,
                                        "message": f"ruleset {key} version {document.get('version')}"}])
        new_variants = []
        for proposal, variant in taken:
            index = self._add_variant(proposal.base, variant)
            self.tasks[index] = self.explorer.task(proposal.base, variant, self.reference(proposal.base),
                                                   origin=variant.origin)
            new_variants.append(variant)
        if new_variants:
            host.recorder.add_variants(new_variants)
        return len(new_variants)

    def minimizing(self) -> bool:
        """Drive minimisation once exploration is spent and settled: True while a job has work
        in flight."""
        host = self.host
        if host.stopping or not self.explorer.settled:
            return False
        job = self.min_job
        if job is None:
            picked = next_failure(self.explorer.found, self.min_fingerprints,
                                  lambda f: self.explorer.cases[f["base"]].baseline)
            if picked is not None:
                self.min_fingerprints.add(picked[0])
                job = self.min_job = self.explorer.minimize_job(picked[1], host.plan.minimize_budget).start()
            if job is None:
                return False
        if job.done:
            event = job.to_event()
            event["instance_snapshot"] = self.instance_snapshots.get(job.variant_id)
            self.minimized.append(event)
            host.recording.add_events([event])
            self.min_job = None
            return True
        params = job.pending(timeout=0.05)
        if params is not None:
            variant = Variant.of(host.cases[job.base], params, origin="minimize", parent_id=job.variant_id)
            known = self.final_by_variant.get(variant.variant_id)
            if known is not None:  # this run already ran that exact variant: reuse its outcome
                job.answer(*known)
                return True
            index = self._add_variant(job.base, variant)
            self.min_index[index] = job
            host.recorder.add_variants([variant])
            host.fleet.feed_all()
        return True

    def on_final(self, index: int, result: Result, payload: P.TestResult,
                 anomalies: list[dict[str, Any]]) -> None:
        variant = self.host.variants[index]
        failed = result.outcome.is_failure
        self.final_by_variant[variant.variant_id] = (failed, result.fingerprint, result.message)
        if self.tasks.pop(index, None) is not None and failed and payload.instance:
            self._snapshot_instance(index, payload.instance)
        if index in self.min_index:
            self.min_index.pop(index).answer(failed, result.fingerprint, result.message)
        else:
            base = self.variant_map.get(index, (index, None))[0]
            self.explorer.observe(base, variant, result, anomalies, payload.proposals or ())

    def stop(self) -> None:
        if self.min_job is not None:
            self.min_job.stop()

    def conclusion(self) -> list[dict[str, Any]]:
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

    def outcome(self) -> dict[str, Any]:
        variants = self.host.variants
        return {**self.explorer.summary(), "minimized": self.minimized, "failing": self._failing_by_kind(),
                "variants": {v.variant_id: {"origin": v.origin, "params": v.params,
                                            "instance": self.instance_snapshots.get(v.variant_id)}
                             for i, v in enumerate(variants) if i in self.variant_map}}

    # -- inside -------------------------------------------------------------------------------
    def _failing_by_kind(self) -> dict[str, int]:
        """The final failing results (those the result line counts as failed or error) by what
        ran: a baseline test, an explored variant, or a minimisation check."""
        counts = {"baseline": 0, "explored": 0, "minimize": 0}
        for index, result in self.host.recording.final.items():
            if not result.outcome.is_failure:
                continue
            if index not in self.variant_map:
                counts["baseline"] += 1
            else:
                counts["minimize" if self.host.variants[index].origin == "minimize" else "explored"] += 1
        return counts

    def _add_variant(self, base: int, variant: Variant) -> int:
        host = self.host
        [index] = host.queue.extend(1, like=base)
        host.items.append({**host.items[base], "params": variant.params, "explored": True})
        host.cases.append(host.cases[base])
        host.variants.append(variant)
        self.variant_map[index] = (base, variant.params)
        host.total += 1
        return index

    def _snapshot_instance(self, index: int, instance: dict[str, Any]) -> None:
        """A failing explorable execution's SUT config, kept as a snapshot (once per distinct
        config) and named in an ``instance`` event: part of the failure's provenance."""
        host = self.host
        variant, case = host.variants[index], host.cases[index]
        key = json.dumps(instance, sort_keys=True, default=str)
        snapshot_id = self.config_snapshots.get(key)
        if snapshot_id is None:
            try:
                snapshot_id = host.recorder.snapshot_config(host.run_info.run_id, str(instance["name"]),
                                                            dict(instance["config"]))
            except Exception as exc:  # noqa: BLE001 - the run goes on; the config stays in the event
                host.say(f"could not snapshot the config of instance {instance['name']}: {exc}")
                snapshot_id = ""
            self.config_snapshots[key] = snapshot_id
        info = {"instance": instance["name"], "config": instance["config"], "snapshot": snapshot_id}
        self.instance_snapshots[variant.variant_id] = info
        host.recording.add_events([{"kind": "instance", "case_id": case.case_id, "variant_id": variant.variant_id,
                                    "nodeid": host.items[index]["nodeid"], **info,
                                    "message": f"instance {instance['name']} config snapshot {snapshot_id[:12]}"}])

    def reference(self, base: int) -> dict[str, list[float]]:
        """The case's telemetry baselines, for the nearness of an execution to an anomaly."""
        monitor = self.host.plan.monitor
        return {} if monitor is None else monitor.reference(self.host.cases[base].case_id)
