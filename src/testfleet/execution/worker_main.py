"""Entry point of a collector/worker process: ``python -m testfleet.execution.worker_main``.

    python -m testfleet.execution.worker_main zygote|worker --rundir DIR [--worker-id ID] -- PYTEST_ARGS

How to reach the coordinator comes through the environment (the socket address and authkey must
not show in ``ps``); the mode, the folder for crash dumps and (spawn mode) the worker's id on the
command line; everything about the run in the WorkerConfig the coordinator sends after Hello.
"""

from __future__ import annotations

import os
import sys

import pytest

from testfleet.execution import protocol as P
from testfleet.execution.parent_death import ENV_PARENT_PID, die_with_parent
from testfleet.execution.pytest_worker import WorkerPlugin


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parent = os.environ.get(ENV_PARENT_PID)
    if parent:  # dies with the coordinator, whatever ends it (SIGKILL included)
        die_with_parent(int(parent))
    mode = argv.pop(0) if argv and argv[0] in ("zygote", "worker") else "worker"
    options: dict[str, str] = {}
    while argv and argv[0] in ("--rundir", "--worker-id"):
        options[argv[0]] = argv[1]
        del argv[:2]
    if argv and argv[0] == "--":
        argv.pop(0)
    plugin = WorkerPlugin(
        mode=mode,
        address=os.environ[P.ENV_ADDRESS],
        authkey=bytes.fromhex(os.environ[P.ENV_AUTHKEY]),
        worker_id=options.get("--worker-id"),
        rundir=options["--rundir"],
    )
    code = pytest.main(argv, plugins=[plugin])
    sys.stdout.flush()
    sys.stderr.flush()
    if plugin.is_forked_child:
        # A forked worker returns here too, its own session finished. Its atexit handlers
        # (coverage.py's, a suite's own) run as they would under pytest, but not the
        # interpreter's teardown: freeing every object inherited from the zygote writes to
        # every page of it, so each worker copied the zygote's whole heap just to exit (100
        # workers on 2 CPUs: over 10 s after their last test).
        _run_atexit()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)


def _run_atexit() -> None:
    import atexit

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is not None:
        run()


if __name__ == "__main__":
    sys.exit(main())
