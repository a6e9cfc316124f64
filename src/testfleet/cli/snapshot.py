"""``testfleet snapshot ...``: save, list, show, tag, diff, restore, move and check snapshots.

Exit codes (DESIGN.md): 0 done; 1 when a check does not hold (``verify`` finds damage, or a
``restore``/``export`` meets a damaged chunk); 2 for bad input (a missing path, an unknown or
ambiguous id, a refused archive, a non-empty restore target). ``diff`` exits 0 whether or not the
snapshots differ. Errors are one ``ERROR: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError
from testfleet.reporting.consoles import make_console

if TYPE_CHECKING:
    from testfleet.snapshots.store import SnapshotStore

app = typer.Typer(help="Configuration snapshots: immutable, content-addressed copies of files "
                       "and trees, with tags, diffs, export/import and integrity checks.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2
NOT_MET = 1

StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="DuckDB file whose snapshots to use (default: from settings).")]
IdArg = Annotated[str, typer.Argument(help="A snapshot id or a unique prefix of one.")]


def _fail(exc: TestfleetError) -> typer.Exit:
    from testfleet.snapshots.tree import DamageError

    sys.stderr.write(f"ERROR: {exc}\n")
    return typer.Exit(NOT_MET if isinstance(exc, DamageError) else BAD_INPUT)


@contextmanager
def _snapshots(store: str | None, *, write: bool) -> Iterator[SnapshotStore]:
    from testfleet.settings import check_store_folder, load_settings
    from testfleet.snapshots.store import SnapshotStore
    from testfleet.store.db import Store

    settings, _ = load_settings([], {"store": store} if store else {}, cwd=Path.cwd())
    if write:
        check_store_folder(settings.store)
    with Store.open(settings.store, read_only=not write) as db:
        yield SnapshotStore(db)


def _run(store: str | None, write: bool, work: Callable[[SnapshotStore], int]) -> None:
    """Open the snapshots, do ``work``, turn testfleet errors into one message and exit code (a
    full disk or a read-only folder under the store too: nothing half-written is kept)."""
    from testfleet.atomic import WRITE_ERRNOS, output_error

    try:
        with _snapshots(store, write=write) as ss:
            try:
                code = work(ss)
            except OSError as exc:
                if isinstance(exc, TestfleetError) or exc.errno not in WRITE_ERRNOS:
                    raise
                raise output_error(exc.filename or ss.root, exc) from None
    except TestfleetError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{value!r} is not key=value", param_hint=f"'{flag}'")
        out[key.strip()] = rest
    return out


def _when(text: str | None, flag: str, *, end: bool = False) -> datetime | None:
    """A date (``2024-05-01``, whole day; ``--until`` includes it) or ISO time, local if naive."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or time",
                                 param_hint=f"'{flag}'") from None
    if end and len(text.strip()) == 10:
        value += timedelta(days=1)
    return value


def _size(n: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def _local(value: datetime) -> str:
    return f"{value.astimezone():%Y-%m-%d %H:%M:%S}"


@app.command("save")
def save_command(
    paths: Annotated[list[str], typer.Argument(
        help="Files and directories to snapshot (one directory: its contents; otherwise each under its own name).")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag the snapshot (repeatable).")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", help="key=value metadata (repeatable).")] = None,
    store: StoreOpt = None,
) -> None:
    """Snapshot files or a tree (deduplicated, compressed); print the snapshot id."""
    pairs = _pairs(meta, "--meta")

    def work(ss: SnapshotStore) -> int:
        print(ss.save(paths, tags=tag or [], meta=pairs))
        return 0
    _run(store, True, work)


@app.command("list")
def list_command(
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", "-t", help="Only snapshots with this tag (repeatable: all of them).")] = None,
    meta: Annotated[list[str] | None, typer.Option(
        "--meta", "-m", help="Only snapshots with key=value (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Saved on or after this date/time (ISO, local time).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Saved before this time, or on or before this date.")] = None,
    store: StoreOpt = None,
) -> None:
    """List snapshots, newest first."""
    pairs, start, stop = _pairs(meta, "--meta"), _when(since, "--since"), _when(until, "--until", end=True)

    def work(ss: SnapshotStore) -> int:
        found = ss.list(tags=tag or [], meta=pairs, since=start, until=stop)
        console = make_console()
        if not found:
            console.print("no snapshots match")
            return 0
        table = Table("snapshot", "saved", "files", "size", "tags", "meta", "paths", box=None,
                      header_style="bold")
        for s in found:
            table.add_row(s.snapshot_id[:12], _local(s.created_at), str(s.files), _size(s.size),
                          escape(", ".join(s.tags)),
                          escape(", ".join(f"{k}={v}" for k, v in s.meta.items())),
                          escape(" ".join(s.roots)))
        console.print(table)
        return 0
    _run(store, False, work)


@app.command("show")
def show_command(ref: IdArg, store: StoreOpt = None) -> None:
    """Show a snapshot: entries, logical and stored size, tags, metadata, runs that used it."""
    def work(ss: SnapshotStore) -> int:
        info = ss.info(ref)
        entries = ss.entries(info.snapshot_id)
        console = make_console()
        console.print(f"[bold]snapshot {info.snapshot_id}[/bold]")
        console.print(f"saved {_local(info.created_at)} from {escape(' '.join(info.roots))}")
        console.print(f"{info.files} files, {_size(info.size)}; stored "
                      f"{_size(ss.stored_size(info.snapshot_id))} (compressed, each frame once)")
        console.print("tags: " + (escape(", ".join(info.tags)) or "-"))
        console.print("meta: " + (escape(", ".join(f"{k}={v}" for k, v in info.meta.items()))
                                  or "-"))
        runs = ss.runs_of(info.snapshot_id)
        console.print("runs: " + (escape(", ".join(f"{r} ({role})" for r, role in runs)) or "-"))
        table = Table("mode", "kind", "size", "path", box=None, header_style="bold")
        for e in entries:
            shown = e.path + (f" -> {e.target}" if e.target is not None else "")
            table.add_row(f"{e.mode:04o}", e.kind, _size(e.size) if e.kind == "file" else "",
                          escape(shown))
        console.print(table)
        return 0
    _run(store, False, work)


@app.command("tag")
def tag_command(ref: IdArg, tags: Annotated[list[str], typer.Argument(help="Tags to add.")],
                store: StoreOpt = None) -> None:
    """Add tags to a snapshot."""
    def work(ss: SnapshotStore) -> int:
        sid = ss.tag(ref, tags)
        print(f"{sid[:12]}: {', '.join(ss.info(sid).tags)}")
        return 0
    _run(store, True, work)


@app.command("untag")
def untag_command(ref: IdArg, tags: Annotated[list[str], typer.Argument(help="Tags to remove.")],
                  store: StoreOpt = None) -> None:
    """Remove tags from a snapshot."""
    def work(ss: SnapshotStore) -> int:
        sid = ss.untag(ref, tags)
        print(f"{sid[:12]}: {', '.join(ss.info(sid).tags) or '(no tags)'}")
        return 0
    _run(store, True, work)


@app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="The older snapshot (id or prefix).")],
    new: Annotated[str, typer.Argument(help="The newer snapshot (id or prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """What changed between two snapshots: files, modes, and key by key in config files."""
    from testfleet.snapshots.diff import diff_trees

    def work(ss: SnapshotStore) -> int:
        a, b = ss.resolve(old), ss.resolve(new)
        result = diff_trees(a, {e.path: e for e in ss.entries(a)},
                            b, {e.path: e for e in ss.entries(b)},
                            lambda path: ss.read_file(a, path), lambda path: ss.read_file(b, path))
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n" if as_json
                         else result.render_text())
        return 0
    _run(store, False, work)


@app.command("restore")
def restore_command(
    ref: IdArg,
    dest: Annotated[str, typer.Argument(help="Where to write the tree: a new path or an empty directory.")],
    store: StoreOpt = None,
) -> None:
    """Write a snapshot's files back, exact bytes and modes, all or nothing."""
    from testfleet.atomic import check_output

    try:
        check_output(dest, "DEST", folder=True)
    except TestfleetError as exc:
        raise _fail(exc) from None

    def work(ss: SnapshotStore) -> int:
        info = ss.info(ref)
        out = ss.restore(info.snapshot_id, dest)
        print(f"restored {info.snapshot_id[:12]} ({info.files} files, {_size(info.size)}) to {out}")
        return 0
    _run(store, False, work)


@app.command("export")
def export_command(
    refs: Annotated[list[str], typer.Argument(help="Snapshots to export (ids or prefixes).")],
    out: Annotated[str, typer.Option("--output", "-o", help="The archive to write (a tar file).")],
    store: StoreOpt = None,
) -> None:
    """Write snapshots and their chunks into one archive for `snapshot import`."""
    from testfleet.atomic import check_output
    from testfleet.snapshots.archive import export_archive

    try:
        check_output(out, "--output")
    except TestfleetError as exc:
        raise _fail(exc) from None

    def work(ss: SnapshotStore) -> int:
        moved = export_archive(ss, refs, out)
        print(f"exported {len(moved.snapshots)} snapshot(s), {moved.chunks} chunks "
              f"({_size(moved.stored)}) to {out}")
        return 0
    _run(store, False, work)


@app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="An archive written by `snapshot export`.")],
    store: StoreOpt = None,
) -> None:
    """Check an archive in full, then add its snapshots to the store; print their ids."""
    from testfleet.snapshots.archive import import_archive

    def work(ss: SnapshotStore) -> int:
        moved = import_archive(ss, file)
        for sid in moved.snapshots:
            print(sid)
        sys.stderr.write(f"imported {len(moved.snapshots)} snapshot(s) ({moved.new_snapshots} "
                         f"new), {moved.chunks} new chunks ({_size(moved.stored)})\n")
        return 0
    _run(store, True, work)


@app.command("verify")
def verify_command(
    ref: Annotated[str | None, typer.Argument(help="One snapshot (default: all).")] = None,
    store: StoreOpt = None,
) -> None:
    """Read every chunk and check its SHA-256; exit 1 naming each damaged snapshot and file."""
    def work(ss: SnapshotStore) -> int:
        checked = ss.verify(ref)
        for problem in checked.problems:
            print(f"DAMAGED {problem}")
        state = f"{len(checked.problems)} problem(s)" if checked.problems else "ok"
        print(f"checked {checked.snapshots} snapshot(s), {checked.chunks} chunks "
              f"({_size(checked.bytes)}): {state}")
        return NOT_MET if checked.problems else 0
    _run(store, False, work)


@app.command("gc")
def gc_command(store: StoreOpt = None) -> None:
    """Remove packs and chunks no complete snapshot uses (a crashed save's) and temporary files."""
    def work(ss: SnapshotStore) -> int:
        done = ss.gc()
        for name, n in done.packs:
            print(f"removed orphan pack {name} ({_size(n)})")
        for name, n in done.temp_files:
            print(f"removed temporary file {name} ({_size(n)})")
        print(f"freed {_size(done.freed)}: {len(done.packs)} pack(s), {len(done.temp_files)} "
              f"temporary file(s), {done.chunk_rows} unused chunk row(s); "
              f"{done.kept_packs} pack(s) kept")
        if done.dead_bytes:
            print(f"{_size(done.dead_bytes)} of unused chunks remain inside kept packs")
        return 0
    _run(store, True, work)
