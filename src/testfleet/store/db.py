"""The result store: one DuckDB file holding runs, cases, variants and results.

Approach:

* The schema lives in ``schema.sql`` (the current version). ``meta.schema_version`` records the
  version a file was written with; :data:`MIGRATIONS` upgrades an older file one step at a time, a
  newer one is refused without writing anything.
* Writes are columnar: each batch is ONE ``INSERT ... SELECT unnest($1::T[]), unnest($2::T[]) ...``
  per table, one list parameter per column, inside a transaction (``executemany`` is ~100x slower).
* Timestamps are ``TIMESTAMPTZ``, written with ``make_timestamptz(epoch_us)`` and read back with
  ``epoch_us(col)`` so no session time zone (nor ``pytz``) is involved; they come back in UTC, equal
  to the aware datetimes that went in. Naive datetimes are taken as UTC. Lists and dicts are JSON.
* Only the orchestrator writes during a run. DuckDB lets one process hold a file for writing, or
  any number of processes hold it read-only, never both: a second process gets a clear
  :class:`StoreError` rather than DuckDB's lock message.
* Every DuckDB error becomes a :class:`StoreError` naming the store's path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import duckdb
from pydantic import BaseModel

from testfleet.errors import StoreError
from testfleet.model import FAILURE_OUTCOMES, Case, Result, Run, Variant

SCHEMA_VERSION = 4
"""The schema version this testfleet writes and reads (``meta.schema_version``)."""

Migration = Callable[[duckdb.DuckDBPyConnection], object]  # what it returns is unused


def _sql(name: str) -> str:
    return resources.files("testfleet.store").joinpath(name).read_text(encoding="utf-8")


MIGRATIONS: dict[int, Migration] = {
    1: lambda conn: conn.execute(_sql("schema_v2.sql")),  # snapshots, run snapshots, specs
    2: lambda conn: conn.execute(_sql("schema_v3.sql")),  # telemetry, events
    3: lambda conn: conn.execute(_sql("schema_v4.sql")),  # each run's coordinator
}
"""``MIGRATIONS[v]`` upgrades a store from version ``v`` to ``v + 1``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_M = TypeVar("_M", bound=BaseModel)

# (column, kind) per table, in model field order; kind picks the SQL type and the conversion.
_RUN_COLS = [("run_id", "VARCHAR"), ("started_at", "ts"), ("finished_at", "ts"),
             ("status", "VARCHAR"), ("exit_code", "INTEGER"), ("argv", "json"), ("paths", "json"),
             ("rootdir", "VARCHAR"), ("settings", "json"), ("seed", "BIGINT"),
             ("git_sha", "VARCHAR"), ("backend", "VARCHAR"), ("workers", "INTEGER"),
             ("collected", "INTEGER"), ("deselected", "INTEGER"), ("counts", "json"),
             ("flaky", "INTEGER"), ("duration", "DOUBLE")]
_CASE_COLS = [("case_id", "VARCHAR"), ("nodeid", "VARCHAR"), ("kind", "VARCHAR"),
              ("file", "VARCHAR"), ("line", "BIGINT"), ("name", "VARCHAR"), ("markers", "json")]
_VARIANT_COLS = [("variant_id", "VARCHAR"), ("case_id", "VARCHAR"), ("params", "json"),
                 ("origin", "VARCHAR"), ("parent_id", "VARCHAR")]
_RESULT_COLS = [("run_id", "VARCHAR"), ("variant_id", "VARCHAR"), ("case_id", "VARCHAR"),
                ("nodeid", "VARCHAR"), ("attempt", "INTEGER"), ("worker", "VARCHAR"),
                ("outcome", "VARCHAR"), ("duration", "DOUBLE"), ("started_at", "ts"),
                ("finished_at", "ts"), ("when", "VARCHAR"), ("message", "VARCHAR"),
                ("longrepr", "VARCHAR"), ("stdout", "VARCHAR"), ("stderr", "VARCHAR"),
                ("log", "VARCHAR"), ("categories", "json"), ("fingerprint", "VARCHAR"),
                ("file", "VARCHAR"), ("line", "BIGINT"), ("keywords", "json"), ("phases", "json"),
                ("flaky", "BOOLEAN"), ("final", "BOOLEAN"), ("telemetry", "json")]
_RUN_UPDATE = ["finished_at", "status", "exit_code", "counts", "flaky", "duration", "collected",
               "deselected"]


def _to_us(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _encode(kind: str, value: Any) -> Any:
    if kind == "ts":
        return _to_us(value)
    if kind == "json":
        return json.dumps(value, default=str)  # Paths, datetimes... as text, never a crash
    if isinstance(value, Enum):
        return value.value
    return value


def _decode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ts":
        return _EPOCH + timedelta(microseconds=value)
    if kind == "json":
        return json.loads(value)
    return value


def _param(i: int, kind: str, *, column: bool = True) -> str:
    """The SQL reading parameter ``$i``: a list, one element per row (``column``), or one value."""
    sql_type = {"ts": "BIGINT", "json": "VARCHAR"}.get(kind, kind)
    value = f"unnest(${i}::{sql_type}[])" if column else f"${i}::{sql_type}"
    if kind == "ts":
        return f"make_timestamptz({value})"
    return f"{value}::JSON" if kind == "json" else value


def _insert_sql(table: str, cols: Sequence[tuple[str, str]], tail: str = "") -> str:
    names = ", ".join(f'"{name}"' for name, _ in cols)
    values = ", ".join(_param(i, kind) for i, (_, kind) in enumerate(cols, 1))
    return f"INSERT INTO {table} ({names}) SELECT {values} {tail}"


def _columns(rows: Sequence[BaseModel], cols: Sequence[tuple[str, str]]) -> list[list[Any]]:
    return [[_encode(kind, getattr(row, name)) for row in rows] for name, kind in cols]


def _select_list(cols: Sequence[tuple[str, str]], alias: str = "") -> str:
    out = []
    for name, kind in cols:
        col = f'{alias}"{name}"'
        out.append({"ts": f"epoch_us({col})", "json": f"{col}::VARCHAR"}.get(kind, col))
    return ", ".join(out)


def _rows(model: type[_M], cols: Sequence[tuple[str, str]], rows: Iterable[tuple[Any, ...]],
          ) -> list[_M]:
    return [model(**{name: _decode(kind, value)
                     for (name, kind), value in zip(cols, row, strict=True)}) for row in rows]


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if "lock" in text.lower():
        return StoreError("the store is in use by another process (DuckDB allows one writing "
                          f"process, or several read-only ones, never both): {text}",
                          source=str(path))
    if "different configuration" in text:
        return StoreError("the store is already open in this process in the other mode "
                          "(read-only vs. writing); share that Store, which can read as well",
                          source=str(path))
    if "not a valid DuckDB database" in text:
        return StoreError("is not a testfleet store (not a DuckDB database)", source=str(path))
    if "does not exist" in text:
        return StoreError("no store here", source=str(path),
                          expected="a store written by `testfleet run`")
    return StoreError(f"cannot open the store: {text}", source=str(path))


class Store:
    """A testfleet store opened on one DuckDB file. Use :meth:`open`; close it (or use ``with``).

    One connection, not shared between threads: give each thread its own :class:`Store`.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self._conn: duckdb.DuckDBPyConnection | None = conn
        self.path = path
        self.read_only = read_only

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> Store:
        """Open (and, for writing, create or migrate) the store at ``path``."""
        path = Path(path).expanduser()
        if read_only and not path.exists():
            raise StoreError("no store here", source=str(path),
                             expected="a store written by `testfleet run`")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise _open_error(path, exc) from exc
        store = cls(conn, path, read_only)
        try:
            with store._guard("open"):
                store._prepare()
            if not read_only:  # runs whose coordinator died are closed (store/liveness.py)
                from testfleet.store.journal import replay
                from testfleet.store.liveness import close_orphans

                try:  # first what a killed coordinator journalled (store/journal.py)
                    replay(store)
                    close_orphans(store)
                except (StoreError, OSError):
                    pass  # a full disk: readers still show them interrupted; the next open retries
        except BaseException:
            store.close()
            raise
        return store

    def for_thread(self) -> Store:
        """Another :class:`Store` on the same open database, for another thread (a DuckDB cursor:
        its own transactions, the same file and the same process). Close it when done."""
        return Store(self._db.cursor(), self.path, self.read_only)

    def _prepare(self) -> None:
        conn = self._db
        tables = {row[0] for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main'").fetchall()}
        if not tables:
            if self.read_only:
                raise StoreError("is an empty DuckDB database, not a testfleet store",
                                 source=str(self.path))
            with self._transaction():
                conn.execute(_sql("schema.sql"))
                conn.execute(_sql("schema_v2.sql"))
                conn.execute(_sql("schema_v3.sql"))
                conn.execute(_sql("schema_v4.sql"))
                conn.execute("INSERT INTO meta VALUES ('schema_version', $1)",
                             [str(SCHEMA_VERSION)])
            return
        if "meta" not in tables:
            raise StoreError("is not a testfleet store (a DuckDB database without testfleet's "
                             "meta table)", source=str(self.path))
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            found = int(row[0]) if row else None
        except ValueError:
            found = None
        if found is None:
            raise StoreError("is not a testfleet store (no schema_version in its meta table)",
                             source=str(self.path))
        if found > SCHEMA_VERSION:
            raise StoreError(f"was written by a newer testfleet: schema version {found}, this "
                             f"testfleet supports up to {SCHEMA_VERSION}", source=str(self.path),
                             expected="a newer testfleet to read it")
        if found < SCHEMA_VERSION:
            if self.read_only:
                raise StoreError(f"has schema version {found} and needs migrating to "
                                 f"{SCHEMA_VERSION}; open it for writing once (e.g. "
                                 "`testfleet run`)", source=str(self.path))
            with self._transaction():
                for version in range(found, SCHEMA_VERSION):
                    MIGRATIONS[version](conn)
                conn.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                             [str(SCHEMA_VERSION)])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise StoreError("the store is closed", source=str(self.path))
        return self._conn

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except duckdb.Error as exc:
            raise StoreError(f"cannot {action}: {exc}", source=str(self.path)) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._db
        conn.begin()
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _write(self, action: str, statements: Sequence[tuple[str, list[Any]]],
               ) -> list[tuple[Any, ...]]:
        """Run statements in one transaction; the last one's rows (for ``RETURNING``)."""
        if self.read_only:
            raise StoreError(f"cannot {action}: the store is open read-only",
                             source=str(self.path))
        rows: list[tuple[Any, ...]] = []
        with self._guard(action), self._transaction():
            for sql, params in statements:
                rows = self._db.execute(sql, params).fetchall()
        return rows

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._guard("read"):
            return self._db.execute(sql, params or []).fetchall()

    # The snapshot index and the spec history (snapshots/, specs/) keep their SQL next to their
    # logic and run it through these two: one transaction per write, errors as StoreError.
    def write(self, action: str, statements: Sequence[tuple[str, list[Any]]],
              ) -> list[tuple[Any, ...]]:
        """Run statements in one transaction (all or nothing); the last one's rows."""
        return self._write(action, statements)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement."""
        return self._query(sql, params)

    def fetch_numpy(self, sql: str, params: list[Any] | None = None) -> dict[str, Any]:
        """One statement's columns as numpy arrays (bulk reads for analysis)."""
        with self._guard("read"):
            return self._db.execute(sql, params or []).fetchnumpy()

    # -- writing ---------------------------------------------------------------------------

    def begin_run(self, run: Run) -> None:
        """Record a new run (its id must be new), begun by this process: its pid, host and start
        time tell a later reader whether the run still has a coordinator (store/liveness.py)."""
        from testfleet.store.liveness import this_coordinator

        self._write(f"record run {run.run_id}",
                    [(_insert_sql("runs", _RUN_COLS), _columns([run], _RUN_COLS)),
                     ("UPDATE runs SET coordinator_pid = $1, coordinator_host = $2, "
                      "coordinator_started = $3 WHERE run_id = $4",
                      [*this_coordinator(), run.run_id])])

    def reopen_run(self, run: Run) -> None:
        """``testfleet run --resume``: a recorded run runs again, begun by this process (its end,
        status and exit code are cleared until it finishes; what it stored stays)."""
        from testfleet.store.liveness import this_coordinator

        sql = ("UPDATE runs SET status = 'running', finished_at = NULL, exit_code = NULL, "
               "coordinator_pid = $1, coordinator_host = $2, coordinator_started = $3 "
               "WHERE run_id = $4 RETURNING run_id")
        if not self._write(f"reopen run {run.run_id}", [(sql, [*this_coordinator(), run.run_id])]):
            raise StoreError(f"no run {run.run_id!r} to resume", source=str(self.path))

    def finish_run(self, run: Run) -> None:
        """Update a recorded run's end: finished_at, status, exit code, counts, totals."""
        kinds = dict(_RUN_COLS)
        sets = ", ".join(f'"{name}" = {_param(i, kinds[name], column=False)}'
                         for i, name in enumerate(_RUN_UPDATE, 1))
        params = [_encode(kinds[name], getattr(run, name)) for name in _RUN_UPDATE]
        sql = f"UPDATE runs SET {sets} WHERE run_id = ${len(params) + 1} RETURNING run_id"
        if not self._write(f"finish run {run.run_id}", [(sql, [*params, run.run_id])]):
            raise StoreError(f"no run {run.run_id!r} to finish (begin_run first)",
                             source=str(self.path))

    def add_cases(self, cases: Sequence[Case], *, run_id: str | None = None) -> None:
        """Store cases (known ones are kept as they are); with ``run_id``, link them to the run."""
        unique = list({case.case_id: case for case in cases}.values())
        if not unique:
            return
        statements: list[tuple[str, list[Any]]] = [
            (_insert_sql("cases", _CASE_COLS, "ON CONFLICT DO NOTHING"),
             _columns(unique, _CASE_COLS))]
        if run_id is not None:
            statements.append(("INSERT INTO run_cases SELECT $1, unnest($2::VARCHAR[]) "
                               "ON CONFLICT DO NOTHING", [run_id, [c.case_id for c in unique]]))
        self._write("store cases", statements)

    def add_variants(self, variants: Sequence[Variant]) -> None:
        """Store variants (known ids are kept: a variant's id already hashes its content)."""
        unique = list({v.variant_id: v for v in variants}.values())
        if unique:
            self._write("store variants", [(_insert_sql("variants", _VARIANT_COLS,
                                                        "ON CONFLICT DO NOTHING"),
                                            _columns(unique, _VARIANT_COLS))])

    def append_results(self, results: Sequence[Result]) -> None:
        """Append one row per result (attempt), the whole batch in one statement and transaction."""
        if results:
            self._write("store results", [(_insert_sql("results", _RESULT_COLS),
                                           _columns(results, _RESULT_COLS))])

    # -- reading ---------------------------------------------------------------------------

    def list_runs(self, limit: int = 20) -> list[Run]:
        """The ``limit`` newest runs, newest first (a run whose coordinator died reads as
        interrupted, even in a read-only store)."""
        from testfleet.store.liveness import settle

        if limit < 1:
            raise StoreError(f"cannot list {limit} runs", source=str(self.path),
                             expected="a limit of 1 or more")
        rows = self._query(f"SELECT {_select_list(_RUN_COLS)} FROM runs "
                           "ORDER BY started_at DESC, run_id DESC LIMIT $1", [limit])
        return settle(self, _rows(Run, _RUN_COLS, rows))

    def get_run(self, ref: str, *, settle: bool = True) -> Run:
        """The run named by ``ref``: a full run id, a unique prefix of one, or ``'last'``. With
        ``settle``, a run whose coordinator died reads as interrupted (store/liveness.py)."""
        from testfleet.store import liveness

        def found(rows: list[tuple[Any, ...]]) -> Run:
            run = _rows(Run, _RUN_COLS, rows)[0]
            return liveness.settle(self, [run])[0] if settle else run

        select = f"SELECT {_select_list(_RUN_COLS)} FROM runs"
        if ref == "last":
            rows = self._query(f"{select} ORDER BY started_at DESC, run_id DESC LIMIT 1")
            if not rows:
                raise StoreError("no runs recorded yet", source=str(self.path))
            return found(rows)
        rows = self._query(f"{select} WHERE run_id = $1", [ref])
        if not rows and ref:
            rows = self._query(f"{select} WHERE starts_with(run_id, $1) "
                               "ORDER BY started_at DESC, run_id LIMIT 6", [ref])
        if len(rows) == 1:
            return found(rows)
        expected = "a run id, a unique prefix of one, or 'last' (see `testfleet runs`)"
        if not rows:
            raise StoreError(f"no run {ref!r}", source=str(self.path), expected=expected)
        names = ", ".join(str(row[0]) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise StoreError(f"run prefix {ref!r} is ambiguous: it matches {names}",
                         source=str(self.path), expected=expected)

    def results(self, run_id: str, *, final_only: bool = False) -> list[Result]:
        """A run's results, ordered by finished_at (unknown last), then nodeid and attempt."""
        rows = self._query(
            f"SELECT {_select_list(_RESULT_COLS)} FROM results WHERE run_id = $1"
            + (" AND final" if final_only else "")
            + " ORDER BY finished_at NULLS LAST, nodeid, attempt, rowid", [run_id])
        return _rows(Result, _RESULT_COLS, rows)

    def cases(self, run_id: str | None = None) -> list[Case]:
        """Every stored case, or those a run collected; ordered by nodeid."""
        select = f"SELECT {_select_list(_CASE_COLS, 'c.')} FROM cases c"
        if run_id is None:
            rows = self._query(f"{select} ORDER BY c.nodeid")
        else:
            rows = self._query(f"{select} JOIN run_cases USING (case_id) WHERE run_id = $1 "
                               "ORDER BY c.nodeid", [run_id])
        return _rows(Case, _CASE_COLS, rows)

    def variants(self, case_id: str | None = None) -> list[Variant]:
        """Every stored variant, or those of one case; ordered by case, then variant id."""
        where = "" if case_id is None else "WHERE case_id = $1"
        rows = self._query(f"SELECT {_select_list(_VARIANT_COLS)} FROM variants {where} "
                           "ORDER BY case_id, variant_id", [] if case_id is None else [case_id])
        return _rows(Variant, _VARIANT_COLS, rows)

    def variant_params(self, variant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The parameters of many variants at once, by id (ids not stored are left out)."""
        rows = self._query("SELECT variant_id, params FROM variants "
                           "WHERE variant_id IN (SELECT unnest($1::VARCHAR[]))",
                           [list(map(str, variant_ids))])
        return {vid: _decode("json", params) or {} for vid, params in rows}

    def duration_history(self, limit_runs: int = 10) -> dict[str, float]:
        """Per nodeid, the median duration of its passed/failed results in recent finished runs."""
        rows = self._query(
            "WITH recent AS (SELECT run_id FROM runs WHERE finished_at IS NOT NULL "
            "                ORDER BY started_at DESC, run_id DESC LIMIT $1) "
            "SELECT nodeid, median(duration) FROM results "
            "WHERE run_id IN (SELECT run_id FROM recent) AND outcome IN ('passed', 'failed') "
            "GROUP BY nodeid", [limit_runs])
        return {nodeid: float(value) for nodeid, value in rows}

    def last_failed(self) -> set[str]:
        """Nodeids whose final result(s) in the latest finished run that ran them include a failure.

        Like pytest's cache: a test that failed, then passed, is out; one that failed and was not
        run since stays in.
        """
        rows = self._query(
            "SELECT nodeid FROM ("
            "  SELECT r.nodeid, r.outcome, dense_rank() OVER (PARTITION BY r.nodeid "
            "         ORDER BY u.started_at DESC, u.run_id DESC) AS k "
            "  FROM results r JOIN runs u USING (run_id) "
            "  WHERE r.final AND u.finished_at IS NOT NULL) "
            "WHERE k = 1 GROUP BY nodeid HAVING bool_or(list_contains($1, outcome))",
            [sorted(o.value for o in FAILURE_OUTCOMES)])
        return {row[0] for row in rows}

    def flaky(self, run_id: str) -> list[str]:
        """The nodeids marked flaky in a run, sorted."""
        rows = self._query("SELECT DISTINCT nodeid FROM results WHERE run_id = $1 AND flaky "
                           "ORDER BY nodeid", [run_id])
        return [row[0] for row in rows]


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store"]
