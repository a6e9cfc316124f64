"""pytest plugin of ``bench/exploration.py --zoo`` (loaded with ``-p zoo_harness``; bench/zoo on
PYTHONPATH). It never changes what a test checks; it only decides which points run and records
what happened. Environment:

- ``ZOO_METHOD``: ``random`` or ``hypothesis`` (this process runs each explorable test's points
  itself, see below) or ``explore`` (``testfleet run --explore`` runs the points; the plugin only
  records and stops early).
- ``ZOO_SEED``, ``ZOO_BUDGET``: the seed and the executions per explorable test.
- ``ZOO_OUT``: JSON lines, one per execution: case, index, outcome, the ``ZOO-DEFECT:`` markers in
  its failure text, the start of that text when it names none.
- ``ZOO_STOP`` (optional): JSON {case: [marker, ...]}. Once a case has met all its markers, its
  remaining executions are skipped before their setup, so no SUT restarts for them (random,
  hypothesis: stop at once); once every case has, an explore run stops (``session.shouldstop``).
  The bench sets it from the ground truth so that a finished case costs nothing; executions
  after that point enter no figure.
- ``ZOO_TIMEOUT`` (seconds, default 20): random and hypothesis interrupt an execution that runs
  longer (SIGALRM in this process) and record it as ``timeout`` with no marker: a hang is an
  execution that found nothing, never a stalled bench. Explore gets ``testfleet run --timeout``.

random and hypothesis run a point the way a testfleet worker runs an explored variant
(``testfleet.execution.pytest_worker``): the item's parameters swapped in, the ``sut.*`` values
given to the worker's SUT instance (restarted when its config changes), then pytest's own
``pytest_runtest_protocol`` with the item's fixtures set up afresh and the module's and session's
kept. Points: ``random_points(space, budget, seed)`` (testfleet's uniform sampler, distinct
points) or one Hypothesis ``@given`` run over strategies mirroring the space's dimensions, with
``@seed``, ``max_examples=budget``, no database, no deadline; the property never fails, so the
examples Hypothesis generates do not depend on which defect one looks for.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

MARKER = re.compile(r"ZOO-DEFECT:([A-Za-z0-9_.-]+)")


class ZooTimeout(BaseException):
    """Raised in the main thread when an execution outlives ZOO_TIMEOUT (BaseException: a test's
    own ``except Exception`` must not swallow it)."""


def case_of(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def markers_in(text: str) -> list[str]:
    return sorted(set(MARKER.findall(text or "")))


def _space(item: pytest.Item) -> Any:
    from testfleet.execution.worker_config import sut_space_of
    from testfleet.execution.worker_items import space_declaration
    from testfleet.space.declare import space_from_dict

    declared = space_declaration(item, sut_space_of(item.config.rootpath))
    return space_from_dict(declared) if declared is not None else None


def strategy(dim: Any) -> Any:
    """A Hypothesis strategy drawing the values ``dim`` allows (its declaration, read back)."""
    from hypothesis import strategies as st

    from testfleet.space.text import DEFAULT_CHARSET

    spec = dim.to_dict()
    kind = spec["type"]
    if kind in ("int", "size"):
        step = spec.get("step", 1) or 1
        lo, hi = int(dim.min), int(dim.max)
        return st.integers(0, (hi - lo) // step).map(lambda k, lo=lo, step=step: lo + k * step)
    if kind in ("float", "duration"):
        return st.floats(float(dim.min), float(dim.max), allow_nan=False, allow_infinity=False)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(list(spec["values"]))
    if kind == "permutation":
        return st.permutations(list(spec["items"]))
    if kind == "string":
        lo, hi = spec.get("min_len", 0), spec.get("max_len", 16)
        if spec.get("pattern"):
            return st.from_regex(spec["pattern"], fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
        return st.text(alphabet=spec.get("charset") or DEFAULT_CHARSET, min_size=lo, max_size=hi)
    if kind == "list":
        return st.lists(strategy(dim.item), min_size=spec.get("min_items", 0),
                        max_size=spec.get("max_items", 5))
    if kind == "optional":
        return st.none() | strategy(dim.inner)
    raise NotImplementedError(f"no Hypothesis strategy for a {kind} dimension")


class ZooHarness:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.method = os.environ["ZOO_METHOD"]
        self.seed = int(os.environ.get("ZOO_SEED", "1"))
        self.budget = int(os.environ.get("ZOO_BUDGET", "300"))
        self.out = Path(os.environ["ZOO_OUT"])
        self.stop: dict[str, set[str]] = {k: set(v) for k, v in
                                          json.loads(os.environ.get("ZOO_STOP", "{}")).items()}
        self.timeout = float(os.environ.get("ZOO_TIMEOUT", "20"))
        self.seen: dict[str, set[str]] = {}
        self.reports: list[pytest.TestReport] = []
        self.index: dict[str, int] = {}
        self._offset = 0  # how far ZOO_OUT was read (explore)

    # -- recording -------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)

    def _record(self, case: str, reports: list[pytest.TestReport]) -> None:
        from testfleet.execution.worker_results import crash_message as _crash_message

        failed = [r for r in reports if r.failed]
        text = "\n".join(_crash_message(r) + "\n" + str(r.longrepr) for r in failed)
        found = markers_in(text)
        self.seen.setdefault(case, set()).update(found)
        self.index[case] = self.index.get(case, 0) + 1
        outcome = "passed" if not failed else "timeout" if ZooTimeout.__name__ in text else "failed"
        if not failed and any(r.skipped for r in reports):
            outcome = "skipped"
        line = {"case": case, "index": self.index[case], "outcome": outcome, "markers": found}
        if outcome == "failed" and not found:
            line["text"] = text[:300]
        with self.out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def done(self, case: str) -> bool:
        wanted = self.stop.get(case)
        if self.method == "explore" and wanted:
            self._read_file()  # other worker processes (a restarted worker) append to it too
        return bool(wanted) and wanted <= self.seen.get(case, set())

    def _read_file(self) -> None:
        """Take in the lines of ZOO_OUT added since the last call."""
        if not self.out.exists():
            return
        with self.out.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            row = json.loads(line)
            self.seen.setdefault(row["case"], set()).update(row["markers"])

    # -- explore: testfleet runs the points; record them, skip a finished case before its setup
    # (so that no SUT restarts for it), stop the run once every case is finished -------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        case = case_of(item.nodeid)
        if self.method == "explore" and case in self.stop and self.done(case):
            pytest.skip("zoo: every defect of this case was met")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        if self.method != "explore":
            yield
            return
        self.reports = []
        yield
        case = case_of(item.nodeid)
        if case in self.stop:  # the baseline's other tests enter no figure
            self._record(case, self.reports)
            if all(self.done(c) for c in self.stop):
                item.session.shouldstop = "zoo: every defect of the system was met"

    # -- random and hypothesis: this process runs the points ---------------------------------
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # only the tests with a space take part: the cases named in ZOO_STOP when it names some
        # (a test that only uses the SUT has the SUT's config space, but no defect of its own)
        if self.method != "explore":
            items[:] = [i for i in items if (case_of(i.nodeid) in self.stop if self.stop
                                             else _space(i) is not None)]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if self.method == "explore" or session.config.option.collectonly:
            return None
        for item in session.items:
            space = _space(item)
            if self.method == "random":
                from testfleet.space.sampling import random_points

                for point in random_points(space, self.budget, self.seed).points:
                    if self.done(case_of(item.nodeid)):
                        break
                    self.execute(item, point.params)
            else:
                self.hypothesis(item, space)
        session._setupstate.teardown_exact(None)
        return True

    def execute(self, item: pytest.Item, params: dict[str, Any]) -> None:
        from testfleet.execution.worker_items import configure_instance, swap_params

        self.reports = []
        saved = swap_params(item, params)

        def expire(signum: int, frame: Any) -> None:
            raise ZooTimeout(f"execution ran over ZOO_TIMEOUT={self.timeout:g} s")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            configure_instance(item, params)
            item.ihook.pytest_runtest_protocol(item=item, nextitem=item.parent)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if saved is not None:
                saved.restore()
        self._record(case_of(item.nodeid), self.reports)

    def hypothesis(self, item: pytest.Item, space: Any) -> None:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import seed as hseed
        from hypothesis import strategies as st
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(self.out.parent / "hypothesis")  # not .hypothesis/ in the zoo

        names = list(space.dimensions)
        points = st.fixed_dictionaries({n: strategy(space.dimensions[n]) for n in names})
        calls = 0

        @settings(max_examples=self.budget, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @hseed(self.seed)
        @given(points)
        def prop(point: dict[str, Any]) -> None:
            nonlocal calls
            if calls >= self.budget or self.done(case_of(item.nodeid)) or not space.is_valid(point):
                return
            calls += 1
            self.execute(item, point)

        prop()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("ZOO_METHOD"):
        config.pluginmanager.register(ZooHarness(config), "zoo-harness")
