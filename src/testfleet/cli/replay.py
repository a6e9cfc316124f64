"""``testfleet replay VARIANT``: restore the configurations a recorded variant ran with and run it
again, the same case with the same seed.

The variant's latest execution names its run; the run's snapshots (``run_snapshots``: the
settings file today, and the space, ruleset and each instance's SUT configuration as those
features record theirs) are restored under ``--configs DIR``. Then the case runs once more in
the run's root directory with the run's seed. The variant's parameters travel in
``TESTFLEET_REPLAY_PARAMS`` (JSON) for the code that applies them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape

from testfleet.errors import StoreError, TestfleetError
from testfleet.reporting.consoles import make_console

BAD_INPUT = 2


def find_execution(db: Any, variant_ref: str) -> tuple[str, str, str, dict[str, Any]]:
    """(variant id, nodeid, run id, params) of the variant's latest execution."""
    rows = db.query(
        "SELECT v.variant_id, r.nodeid, r.run_id, v.params FROM variants v "
        "JOIN results r ON r.variant_id = v.variant_id JOIN runs u ON u.run_id = r.run_id "
        "WHERE v.variant_id LIKE $1 || '%' ORDER BY u.started_at DESC LIMIT 2", [variant_ref])
    ids = {row[0] for row in rows}
    if not rows:
        raise StoreError(f"no executed variant {variant_ref!r}", source=str(db.path),
                         expected="a variant id (or a unique prefix) from a report")
    if len(ids) > 1:
        raise StoreError(f"variant prefix {variant_ref!r} is ambiguous", source=str(db.path),
                         expected="more characters of the id")
    vid, nodeid, run_id, params = rows[0]
    return vid, nodeid, run_id, json.loads(params) if isinstance(params, str) else params or {}


def replay(variant_ref: str, configs: str | None, run_again: bool, store: str | None) -> int:
    from testfleet.cli.history import _open
    from testfleet.snapshots.store import SnapshotStore

    from testfleet.atomic import check_output

    console = make_console()
    try:
        if configs:
            check_output(configs, "--configs", folder=True)
        with _open(store) as db:
            vid, nodeid, run_id, params = find_execution(db, variant_ref)
            run = db.get_run(run_id)
            snapshot_store = SnapshotStore(db)
            snapshots = snapshot_store.run_snapshots(run_id)
            target = Path(configs or Path(".testfleet") / "replay" / vid)
            restored = []
            for role, snapshot_id in sorted(snapshots.items()):
                dest = target / role.replace(":", "_")
                snapshot_store.restore(snapshot_id, dest)
                restored.append((role, snapshot_id, dest))
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    console.print(f"variant {vid}: {escape(nodeid)} from run {run_id} (seed {run.seed})")
    if params:
        console.print(f"parameters: {escape(json.dumps(params, default=str))}")
    for role, snapshot_id, dest in restored:
        console.print(f"restored {role} configuration {snapshot_id[:12]} -> {escape(str(dest))}")
    if not restored:
        console.print("the run recorded no configuration snapshots")
    if not run_again:
        return 0
    from testfleet.cli.run import RunRequest, execute

    rootdir = Path(run.rootdir) if run.rootdir and Path(run.rootdir).is_dir() else Path.cwd()
    os.environ["TESTFLEET_REPLAY_PARAMS"] = json.dumps(params, default=str)
    previous = Path.cwd()
    os.chdir(rootdir)
    try:
        overrides: dict[str, Any] = {"seed": run.seed, "workers": 1, "failed_first": False}
        if store:
            overrides["store"] = str(Path(previous, store).resolve())
        return execute(RunRequest(paths=[nodeid], overrides=overrides,
                                  argv=["replay", variant_ref]))
    finally:
        os.chdir(previous)
