"""A submitted run's private store: a copy of the server's, taken when the run starts, and its
rows merged back when it ends.

The server's store has one writer, the server; a run's child process cannot open it. So the child
gets a copy (the same history: failed-first order, durations, known variants, snapshots, exactly
as a local ``testfleet run`` on that store would), writes its run there, and the server takes
that run's rows back: every table with a ``run_id`` column gives the rows of that run; every other
table (cases, variants, snapshots, specs: keyed by content) gives the rows it does not have yet.
Both directions go through DuckDB's ATTACH under the server's write lock, in one transaction, so a
reader never sees half a run.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from testfleet.errors import StoreError
from testfleet.store.db import Store

__all__ = ["merge_run", "private_copy"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(store: Store, database: str) -> list[str]:
    return [t for (t,) in store.query(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = $1 AND schema_name = 'main' "
        "ORDER BY table_name", [database])]


def _columns(store: Store, database: str, table: str) -> list[str]:
    return [c for (c,) in store.query(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = $1 AND schema_name = 'main' "
        "AND table_name = $2 ORDER BY column_index", [database, table])]


def _current(store: Store) -> str:
    return str(store.query("SELECT current_database()")[0][0])


def private_copy(main: Store, dest: Path) -> Path:
    """Copy the whole store ``main`` to a new DuckDB file ``dest`` (schema, history, snapshots)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    alias = f"tf_copy_{secrets.token_hex(4)}"
    source = _current(main)
    main.query(f"ATTACH {_literal(str(dest))} AS {alias}")
    try:
        main.query(f"COPY FROM DATABASE {_quote(source)} TO {alias}")
    finally:
        main.query(f"DETACH {alias}")
    return dest


def merge_run(main: Store, private: Path, run_id: str) -> None:
    """Take run ``run_id`` from the store file ``private`` into ``main``."""
    if not private.exists():
        raise StoreError("the run's private store is missing", source=str(private))
    alias = f"tf_run_{secrets.token_hex(4)}"
    target = _current(main)
    main.query(f"ATTACH {_literal(str(private))} AS {alias} (READ_ONLY)")
    try:
        main.query("BEGIN TRANSACTION")
        try:
            copied = set(_tables(main, alias))
            for table in _tables(main, target):
                if table == "meta" or table not in copied:
                    continue
                columns = _columns(main, target, table)
                names = ", ".join(_quote(c) for c in columns)
                source = f"{alias}.main.{_quote(table)}"
                if "run_id" in columns:
                    main.query(f"INSERT INTO {_quote(table)} ({names}) SELECT {names} FROM {source} "
                               "WHERE run_id = $1", [run_id])
                else:
                    main.query(f"INSERT OR IGNORE INTO {_quote(table)} ({names}) SELECT {names} FROM {source}")
            main.query("COMMIT")
        except BaseException:
            main.query("ROLLBACK")
            raise
    finally:
        main.query(f"DETACH {alias}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
