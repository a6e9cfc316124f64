"""The orchestrator's exploration and telemetry bookkeeping, kept apart from the run loop.

:class:`ExplorationMixin` is part of :class:`~testfleet.execution.orchestrator.Orchestrator`: it
turns the explorer's proposals into new items of the run (``_explore_more``), drives the
minimisation of failures exploration found (``_minimizing``), and buffers telemetry series and
events for the recorder. It only uses the orchestrator's own state (items, cases, variants,
scheduler, recorder, plan).
"""

from __future__ import annotations

import time
from typing import Any

from testfleet.model import Variant


class ExplorationMixin:
    # state provided by the Orchestrator
    explorer: Any
    min_job: Any
    min_fingerprints: set[str | None]
    minimized: list[dict[str, Any]]
    min_index: dict[int, Any]
    final_by_variant: dict[str, bool]
    variant_map: dict[int, tuple[int, dict[str, Any]]]
    series: dict[str, list[Any]]
    events: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    items: list[dict[str, Any]]
    cases: list[Any]
    variants: list[Variant]
    scheduler: Any
    recorder: Any
    plan: Any
    stopping: bool
    total: int


    def _minimizing(self, live: list[Any]) -> bool:
        """Drive minimisation once exploration is spent: True while a job has work in flight."""
        if self.stopping or self.explorer.active:
            return False
        job = self.min_job
        if job is None:
            for found in self.explorer.found:
                if found.get("fingerprint") not in self.min_fingerprints:
                    self.min_fingerprints.add(found.get("fingerprint"))
                    job = self.min_job = self.explorer.minimize_job(found, self.plan.minimize_budget).start()
                    break
            if job is None:
                return False
        if job.done:
            event = job.to_event()
            self.minimized.append(event)
            self._add_events([event])
            self.min_job = None
            return True
        params = job.pending(timeout=0.05)
        if params is not None:
            variant = Variant.of(self.cases[job.base], params, origin="minimize", parent_id=job.variant_id)
            known = self.final_by_variant.get(variant.variant_id)
            if known is not None:  # this run already ran that exact variant: reuse its outcome
                job.answer(known)
                return True
            index = self._add_variant(job.base, variant)
            self.min_index[index] = job
            self.recorder.add_variants([variant])
            self._feed_all()
        return True

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
        new_variants = []
        for proposal, variant in taken:
            self._add_variant(proposal.base, variant)
            new_variants.append(variant)
        if new_variants:
            self.recorder.add_variants(new_variants)
        return len(new_variants)

    def _add_series(self, worker_id: str, columns: dict[str, list[Any]]) -> None:
        n = len(columns.get("t", ()))
        self.series["worker"].extend([worker_id] * n)
        for key in ("t", "metric", "value"):
            self.series[key].extend(columns[key])

    def _add_events(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        for event in events:
            event.setdefault("t", now)
        self.events.extend(events)
        self.anomalies.extend(e for e in events if e.get("kind") in ("outlier", "leak"))

