"""Entry point of a collector/worker process: ``python -m testfleet.execution.worker_main``.

The coordinator passes the mode and identity through the environment (the socket address and
authkey must not show in ``ps``) and the pytest arguments on the command line after ``--``.
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
    if argv and argv[0] == "--":
        argv.pop(0)
    plugin = WorkerPlugin(
        mode=mode,
        address=os.environ[P.ENV_ADDRESS],
        authkey=bytes.fromhex(os.environ[P.ENV_AUTHKEY]),
        worker_id=os.environ.get(P.ENV_WORKER_ID),
        rundir=os.environ["TESTFLEET_RUNDIR"],
        worker_count=int(os.environ.get("TESTFLEET_WORKER_COUNT", "1")),
    )
    code = pytest.main(argv, plugins=[plugin])
    sys.stdout.flush()
    sys.stderr.flush()
    # A forked worker returns here too, its own session finished: it exits like any process,
    # so atexit handlers (coverage.py's, a suite's own) run in it as they would under pytest.
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
