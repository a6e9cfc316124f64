"""The run's write-ahead journal: results that arrived but are not yet in the store survive ``kill -9``.

The coordinator writes results to DuckDB in batches (``STORE_FLUSH_SECONDS`` / ``STORE_FLUSH_ROWS``
in ``execution/coordinator/storing.py``) because DuckDB pays per statement: one ``INSERT`` per
result costs ~1 ms, a batch of 2,000 costs ~20 ms. A coordinator killed between two batches would
lose up to a second of results. So every result (and run event) is also appended, at the end of
the coordinator's loop pass that received it, to a JSON-lines file beside the store::

    <store>.journal/<run_id>.jsonl      one line per result ({"r": ...}) or event ({"e": ...})

Decisions, and why:

* ``os.write`` on an ``O_APPEND`` descriptor, once per loop pass (a batch of arrivals): once
  ``write`` returns the bytes are the kernel's, so ``kill -9`` of the coordinator at any later
  moment keeps them. ``fsync`` (which only matters if the machine itself goes down) is asked for
  at most every :data:`SYNC_SECONDS` (50 ms), or at the next loop pass after that, and done by a
  thread of the journal's own (it waits for the disk, milliseconds, which the loop must not): a
  power cut loses at most the last ~second, a killed process nothing that was written.
* When a batch is committed to DuckDB the journal is truncated (:meth:`Journal.checkpoint`): it
  only ever holds what the store lacks, so it stays small and replay is cheap.
* :func:`replay` runs when the store is next opened for writing (before orphaned runs are closed
  as ``interrupted``, so their counts include the replayed results). A line whose result is
  already stored (the coordinator died between DuckDB's commit and the truncation) is skipped:
  results are matched on (run, variant, node id, attempt, worker, phase, end time). A torn last
  line (killed mid-``write``) is dropped. Journals of a run whose coordinator still lives are
  left alone.
* Measured: ``python bench/vs_xdist.py --quick`` shows no slowdown beyond noise (README,
  "A killed run loses nothing"); serialising a result costs ~15 us, one ``write`` a few us.

Not journalled: telemetry samples; a result still in flight (sent by a worker, not yet read by
the coordinator), whose test then runs again on ``--resume``; and results that arrive while a
stopping run (Ctrl-C, ``-x``) drains its workers, which reach the store at the final flush.
``bench/resume_trials.py`` measures what this means: 20 of 20 runs killed at random moments
resumed with nothing lost or duplicated, and no test that had a stored result ran again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testfleet.errors import StoreError
from testfleet.model import Result

if TYPE_CHECKING:
    from testfleet.store.db import Store

SYNC_SECONDS = 0.05
"""At most this long between a journal write and its ``fsync`` (while the loop keeps passing)."""


def journal_dir(store_path: str | Path) -> Path:
    """The folder of a store's journals: ``<store>.journal`` beside the DuckDB file."""
    path = Path(store_path)
    return path.with_name(path.name + ".journal")


class Journal:
    """One run's journal file, written by its coordinator only."""

    def __init__(self, store_path: str | Path, run_id: str) -> None:
        self.path = journal_dir(store_path) / f"{run_id}.jsonl"
        self._fd: int | None = None
        self._pending = False  # written since the last checkpoint
        self._dirty = False  # written since the last fsync
        self._synced = 0.0
        # fsync waits for the disk (ms), so a thread does it: the coordinator's loop never waits
        self._wake = threading.Event()
        self._lock = threading.Lock()  # the descriptor is not closed under a running fsync
        self._syncer: threading.Thread | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            _sync_dir(self.path.parent)  # the file's name survives a crash too
        return self._fd

    def append(self, results: Sequence[Result], events: Sequence[dict[str, Any]] = ()) -> None:
        """Write results and events (one ``write``); fsync when the last one is old enough."""
        if not results and not events:
            return
        lines = [b'{"r":' + r.model_dump_json().encode() + b"}\n" for r in results]
        lines += [json.dumps({"e": e}, default=str).encode() + b"\n" for e in events]
        data = b"".join(lines)
        try:
            fd = self._open()
            while data:  # a write to a regular file is whole unless the disk fills
                data = data[os.write(fd, data):]
        except OSError as exc:  # the journal lives beside the store: its failure is the store's
            raise StoreError(f"cannot write the run's journal {self.path}: {exc.strerror or exc}") from exc
        self._pending = self._dirty = True
        self.sync()

    def sync(self, force: bool = False) -> None:
        """Have what was written fsync'd (by the syncing thread; ``force``: now, here), unless the
        last fsync was asked for under :data:`SYNC_SECONDS` ago."""
        now = time.monotonic()
        if not (self._dirty and self._fd is not None and (force or now - self._synced >= SYNC_SECONDS)):
            return
        self._dirty, self._synced = False, now
        if force:
            os.fsync(self._fd)
            return
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_forever, name="journal-fsync", daemon=True)
            self._syncer.start()
        self._wake.set()

    def _sync_forever(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._fd is None:
                    return
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass  # a full disk: the next write says so where it is handled

    def checkpoint(self) -> None:
        """Everything written is in the store now: empty the journal."""
        if self._fd is not None and self._pending:
            os.ftruncate(self._fd, 0)
            self._pending = self._dirty = False

    def close(self) -> None:
        """Close; the file goes when nothing in it is missing from the store (else the next open
        of the store replays it)."""
        if self._fd is None:
            return
        with self._lock:
            os.close(self._fd)
            self._fd = None
        self._wake.set()  # the syncing thread sees the descriptor gone and ends
        if not self._pending:
            self.path.unlink(missing_ok=True)
            try:
                self.path.parent.rmdir()  # when no other run's journal is left in it
            except OSError:
                pass


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: Path) -> tuple[list[Result], list[dict[str, Any]]]:
    """A journal's results and events; a torn or unreadable line ends it (a kill mid-write)."""
    results: list[Result] = []
    events: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                entry = json.loads(raw)
                if "r" in entry:
                    results.append(Result.model_validate(entry["r"]))
                else:
                    events.append(dict(entry["e"]))
            except (ValueError, KeyError, TypeError):
                break
    return results, events


def _result_key(r: Result) -> tuple[Any, ...]:
    from testfleet.store.db import _to_us

    return (r.variant_id, r.nodeid, r.attempt, r.worker, r.when, _to_us(r.finished_at))


def missing_results(store: Store, run_id: str, results: Iterable[Result]) -> list[Result]:
    """Those of ``results`` the store does not hold yet (each journalled result once)."""
    stored = {tuple(row) for row in store.query(
        'SELECT variant_id, nodeid, attempt, worker, "when", epoch_us(finished_at) FROM results '
        "WHERE run_id = $1", [run_id])}
    out = []
    for result in results:
        key = _result_key(result)
        if key not in stored:
            stored.add(key)
            out.append(result)
    return out


def _missing_events(store: Store, run_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stored = {(float(t), kind, message) for t, kind, message in store.query(
        "SELECT t, kind, message FROM events WHERE run_id = $1", [run_id])}
    return [e for e in events if (float(e.get("t", 0.0)), e.get("kind"), e.get("message") or "") not in stored]


def replay(store: Store) -> dict[str, int]:
    """Write every journal of a dead coordinator into the store, then delete it; per run id, the
    number of results that were missing from the store."""
    from testfleet.store import liveness
    from testfleet.store.telemetry import TelemetryStore

    folder = journal_dir(store.path)
    if store.read_only or not folder.is_dir():
        return {}
    replayed: dict[str, int] = {}
    for path in sorted(folder.glob("*.jsonl")):
        run_id = path.name.removesuffix(".jsonl")
        rows = store.query("SELECT status, coordinator_pid, coordinator_host, coordinator_started "
                           "FROM runs WHERE run_id = $1", [run_id])
        if rows and rows[0][0] == "running" and not liveness.is_gone(*rows[0][1:]):
            continue  # its coordinator is alive (elsewhere): the journal is still being written
        if rows:
            results, events = read(path)
            missing = missing_results(store, run_id, results)
            store.append_results(missing)
            events = _missing_events(store, run_id, events)
            if events:
                TelemetryStore(store).append_events(run_id, events)
            replayed[run_id] = len(missing)
            if missing and rows[0][0] == "interrupted":  # closed before (a replay that failed): recount
                store.finish_run(liveness.as_interrupted(store, store.get_run(run_id, settle=False)))
        path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # a live run's journal is still there
    return replayed


__all__ = ["SYNC_SECONDS", "Journal", "journal_dir", "missing_results", "read", "replay"]
