"""The run's :class:`~testfleet.execution.plan.Recorder` over the DuckDB store.

The coordinator is the store's only writer during a run (see ``db.py``); it reaches the store
only through this recorder, which the CLI hands it, so execution/ never imports DuckDB.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from testfleet.model import Case, Result, Run, Variant
from testfleet.store.db import Store
from testfleet.store.journal import Journal


class StoreRecorder:
    """Feeds the coordinator's results into the DuckDB store (the coordinator's only writer).

    ``configs`` maps a role (``settings``, later ``space``, ``ruleset``, ``sut:<instance>``) to
    the files a run used; each is saved as a snapshot and linked to the run, so ``testfleet
    replay`` can restore exactly what the run saw.
    """

    def __init__(self, store: Store, configs: dict[str, list[Path]] | None = None, *,
                 resuming: bool = False) -> None:
        self.store = store
        self.configs = configs or {}
        self.resuming = resuming  # --resume: the run's row exists; it is reopened, not inserted
        self.journal: Journal | None = None

    def begin_run(self, run: Run, cases: list[Case], variants: list[Variant]) -> None:
        if self.resuming:
            self.store.reopen_run(run)
        else:
            self.store.begin_run(run)
        self.journal = Journal(self.store.path, run.run_id)
        self.store.add_cases(cases, run_id=run.run_id)
        self.store.add_variants(variants)
        if self.configs:
            from testfleet.snapshots.store import SnapshotStore

            snapshots = SnapshotStore(self.store)
            for role, paths in self.configs.items():
                snapshot_id = snapshots.save(paths, meta={"role": role})
                snapshots.record_run(run.run_id, role, snapshot_id)

    def append_results(self, results: list[Result]) -> None:
        self.store.append_results(results)

    # the write-ahead journal (store/journal.py): what arrived, before its batch reaches DuckDB
    def journal_arrivals(self, results: list[Result], events: list[dict[str, Any]]) -> None:
        if self.journal is not None:
            self.journal.append(results, events)
            self.journal.sync()

    def checkpoint(self) -> None:
        """Every journalled result and event is in the store now."""
        if self.journal is not None:
            self.journal.checkpoint()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def add_variants(self, variants: list[Variant]) -> None:
        self.store.add_variants(variants)

    def append_series(self, run_id: str, columns: dict[str, list[Any]]) -> None:
        from testfleet.store.telemetry import TelemetryStore

        TelemetryStore(self.store).append_series(run_id, columns["worker"], columns["t"],
                                                 columns["metric"], columns["value"])

    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        from testfleet.store.telemetry import TelemetryStore

        TelemetryStore(self.store).append_events(run_id, events)

    def snapshot_config(self, run_id: str, instance: str, config: dict[str, Any]) -> str:
        """Save an instance's config (``<instance>.json``) as a snapshot linked to the run as
        ``sut:<snapshot id>``; the same content is stored once and keeps its id."""
        from testfleet.snapshots.store import SnapshotStore

        snapshots = SnapshotStore(self.store)
        with tempfile.TemporaryDirectory(prefix="testfleet-sut-") as tmp:
            path = Path(tmp) / f"{instance}.json"
            path.write_text(json.dumps(config, sort_keys=True, indent=2, default=str) + "\n")
            snapshot_id = snapshots.save([path], meta={"role": "sut", "instance": instance})
        snapshots.record_run(run_id, f"sut:{snapshot_id[:12]}", snapshot_id)
        return snapshot_id


__all__ = ["StoreRecorder"]
