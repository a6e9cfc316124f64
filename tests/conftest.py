"""How the suite is split between pytest-xdist workers, and in what order.

CI runs the README's second command, ``python -m pytest -n logical --dist loadfile``. Here
``-n logical`` means one and a half workers per CPU (:func:`pytest_xdist_auto_num_workers`). Under
``--dist loadfile`` this file changes two things of xdist's scheduling:

* Each test file still goes whole to one worker (a module-scoped fixture, such as the Ray
  cluster or a run shared by a module's assertions, is set up once), but the :data:`HEAVY` files,
  the runs that load the machine most (a Ray cluster; real third-party suites of thousands of
  tests on two testfleet workers), form one unit: on two cores they never run at the same time.
* Units are handed out in collection order. xdist would hand out the files with the most tests
  first and the slow end-to-end files, which have few, last, so that one worker finished a long
  file while the other idled. Here the heavy files come first, then every file with a test marked
  ``slow``, then the rest: the long runs start at once and the many quick files fill the gaps.

The sort is stable: within each part files keep pytest's order, and tests within a file keep
theirs (some files rely on it: the Ray tests without a cluster run before the module's cluster
exists). Every xdist worker computes the same order, as xdist requires. In a serial run only the
order changes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from child_pytest import CHILD_PYTEST_ADDOPTS


HEAVY = frozenset({"tests/execution/test_ray_backend.py", "tests/execution/test_ray_quarantine.py",
                   "tests/test_third_party_parity.py"})
"""Files (relative to the rootdir, as in node ids) that run one after the other on one worker."""


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    """Compile testfleet's sources to bytecode once, in the session's main process, before any
    test starts a child. Where PYTHONDONTWRITEBYTECODE is set (this project's machine images set
    it), no process writes ``__pycache__``, so every CLI run and worker a test starts compiled
    the ~150 modules it imports from source again: 0.3-0.5 CPU-s per run, on every one of the
    suite's few hundred runs. Python reads a compiled file the flag kept nobody from writing."""
    if hasattr(config, "workerinput") or not sys.flags.dont_write_bytecode:
        return  # an xdist worker (its controller compiled), or imports write bytecode anyway
    import compileall

    import testfleet

    compileall.compile_dir(os.path.dirname(testfleet.__file__), quiet=2, workers=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: (_file(item.nodeid) not in HEAVY, item.path not in slow_files))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n logical`` (and ``auto``) here: one and a half workers per CPU. Most of the suite's
    time is real runs in child processes (testfleet's workers, SUTs, servers, a Ray cluster,
    a browser), which leave a CPU idle while they start, wait on a socket or sleep out a
    timeout; a third worker on two cores fills those gaps (measured on 2 cores: 10 m 14 s with 3
    workers, 13 m 19 s with 2, same tests). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, (3 * cpus + 1) // 2)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class FilesHeavyTogether(LoadFileScheduling):
        """``loadfile``, with the heavy files as one unit and units in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return "heavy end-to-end files" if path in HEAVY else path

    config.option.loadscopereorder = False  # read by LoadScopeScheduling.schedule
    return FilesHeavyTogether(config, log)


@pytest.fixture(scope="session", autouse=True)
def _children_without_unused_plugins() -> Any:
    """Every pytest a test starts (plain pytest for parity, testfleet's workers) leaves out the
    plugins that autoload here and that no child suite uses (tests/child_pytest.py: about 1.7
    CPU-s of imports per child). Set once the session has started, so that this process (and
    xdist's workers, which parse PYTEST_ADDOPTS themselves) keep them: the API-schema tests use
    Schemathesis's, the property tests Hypothesis's. tests/execution/conftest.clean_env does the
    same for the children it builds an environment for."""
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = " ".join(filter(None, [before, CHILD_PYTEST_ADDOPTS]))
    yield
    if before is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = before
