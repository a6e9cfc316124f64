"""testfleet's pytest plugin (entry point ``pytest11``): SUT instances and HTTP scenarios.

Declare the system under test once in ``[tool.testfleet.sut]``; a test asks for
``testfleet_instance`` and gets its worker's running instance (``base_url``, ``port``, ``pid``,
``config``, ``log_path``...). Every testfleet (or pytest-xdist) worker has a pytest session of its
own and each session starts, on first use, one instance that lives until the session ends; under
plain ``pytest`` the session has one.

* When a test that used the instance fails, the last lines of the instance's log are attached to
  its report.
* When the instance dies during a test, that test gets an error saying the SUT crashed (exit code,
  last log lines) and the instance is restarted for the tests after it: the object tests hold is
  updated in place (same port when still free, new pid), and the fixtures set up so far are
  rebuilt before the next test that uses it.
* When a test (an explored variant) needs the instance with other ``sut.*`` config values, every
  fixture set up so far is torn down (while the old instance still answers), the instance restarts
  with that config in a fresh working directory on the same port, and the fixtures are set up again
  against it: a session ``base_url`` or client cannot point at a stopped (or someone else's)
  instance, and a result always belongs to the config its instance ran.
* The baseline runs ``config``, the declared defaults (``draw_from_space = true``: a point of
  ``config_space`` drawn per instance and seed).
* When the instance cannot start at all (the command fails, the ready probe never answers, its
  port is taken), nothing the suite says about the SUT can be trusted: the session stops with
  exit code 2 and the message (probe, last log lines), under testfleet and plain pytest alike.

HTTP scenario files (``*.scenario.yaml``) are collected next to the tests, one item per file,
and run against the worker's instance (or ``--testfleet-base-url``); see
:mod:`testfleet.adapters.scenario_items`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pluggy

_HOLDER_KEY = pytest.StashKey["_InstanceHolder"]()


class _InstanceHolder:
    """This session's SUT instance, started on first use and stopped when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.instance: Any = None
        self.info: Any = None
        #: the config the instance runs when a test asks for nothing else: ``config`` (or a point
        #: drawn from ``config_space`` with ``draw_from_space``), and a replayed variant's values
        self.base_config: dict[str, Any] = {}
        #: the ``sut.*`` values of the variant about to run (set by the testfleet worker)
        self.wanted: dict[str, Any] = {}
        #: the instance restarted after a crash: fixtures built on the old one are rebuilt
        self.stale = False
        #: set by a testfleet worker from its WorkerConfig: the run's seed and its SUT table (the
        #: settings are then not read again here); under plain pytest both come from the settings
        self.seed: int | None = None
        self.spec: Any = None

    def configure(self, sut_params: dict[str, Any]) -> None:
        """Before a variant runs: the variant's ``sut.*`` config values (the instance's own config
        when there are none); applied when the setup of a test that uses the instance begins."""
        self.wanted = sut_params

    def prepare(self, item: pytest.Item) -> None:
        """Before a test that uses the instance is set up: when it needs another config than the
        instance runs (or the instance restarted after a crash), every fixture set up so far is
        torn down first, while the old instance still answers, so that the fixtures depending on
        the instance (a client, a base URL, data created through it) are built again against the
        instance the test will really run with; then the instance restarts with that config, in a
        fresh working directory, on the same port when it is still free."""
        if self.instance is None:
            return  # get() starts it with the wanted config
        wanted = _with_sut_params(self.base_config, self.wanted)
        changed = wanted != self.instance.config
        if not changed and not self.stale:
            return
        item.session._setupstate.teardown_exact(None)
        self.stale = False
        if not changed:
            return
        self.instance.config = wanted
        from testfleet.errors import TestfleetError

        try:
            fresh = self.instance.restart()
        except TestfleetError as exc:
            pytest.exit(f"the system under test did not start with config {wanted}: {exc}", returncode=2)
        for field in dataclasses.fields(fresh):  # tests hold this object: update it in place
            setattr(self.info, field.name, getattr(fresh, field.name))

    def get(self) -> Any:
        if self.info is not None:
            return self.info
        from testfleet.errors import TestfleetError
        from testfleet.execution.sut import SutInstance, instance_config
        from testfleet.settings import load_settings

        rootpath = self.config.rootpath
        spec = self.spec
        if spec is None:
            try:
                settings, source = load_settings([], {}, cwd=rootpath)
                spec = settings.sut_spec()
            except TestfleetError as exc:
                pytest.fail(f"testfleet_instance: {exc}", pytrace=False)
            if spec is None:
                pytest.fail("testfleet_instance needs a [tool.testfleet.sut] table (command, ready, ...) "
                            f"in {source or rootpath / 'pyproject.toml'}", pytrace=False)
            if spec.cwd is None:  # commands are relative to the settings file, like other paths
                spec = spec.model_copy(update={"cwd": str(source.parent if source else rootpath)})
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        seed = self.seed if self.seed is not None else int(os.environ.get("TESTFLEET_SEED", "0") or 0)
        factory = getattr(self.config, "_tmp_path_factory", None)  # absent with -p no:tmpdir
        workdir = factory.mktemp(f"sut-{worker}") if factory is not None else \
            Path(tempfile.mkdtemp(prefix=f"testfleet-sut-{worker}-"))
        try:
            # the baseline runs the declared defaults; exploration asks for other values per test
            self.base_config = instance_config(spec, worker, seed)
            replayed = os.environ.get("TESTFLEET_REPLAY_PARAMS")  # a replayed variant's SUT config
            if replayed:
                import json

                self.base_config = _with_sut_params(self.base_config, json.loads(replayed))
            instance = SutInstance(spec, worker, workdir,
                                   config=_with_sut_params(self.base_config, self.wanted))
            self.info = instance.start()
        except TestfleetError as exc:
            # nothing about the SUT can be tested: stop the session (exit 2), as for bad input
            pytest.exit(f"the system under test did not start: {exc}", returncode=2)
        self.instance = instance
        return self.info

    def check_alive(self) -> None:
        """After a test: if the SUT died, restart it and fail (as an error) with what happened."""
        instance = self.instance
        if instance is None or instance.alive():
            return
        log = instance.tail()
        code = instance.stop()  # reaps it: the exit code is known even if it was still dying
        from testfleet.errors import TestfleetError

        try:
            fresh = instance.start()
            for field in dataclasses.fields(fresh):  # tests hold this object: update it in place
                setattr(self.info, field.name, getattr(fresh, field.name))
            self.stale = True  # what fixtures made through the dead instance is gone with it
            after = f"restarted it on port {fresh.port} for the next tests"
        except TestfleetError as exc:
            after = f"it could not be restarted: {exc}"
        pytest.fail(f"the system under test crashed during this test (exit code {code}); {after}\n"
                    f"last lines of its log:\n{log}", pytrace=False)

    def stop(self) -> None:
        if self.instance is not None:
            self.instance.stop()
            self.instance = None
            self.info = None


def _with_sut_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the ``sut.a.b`` values of ``params`` set at ``a.b`` (nested dicts copied)."""
    out = json_copy(base)
    for name, value in params.items():
        if not name.startswith("sut."):
            continue
        *parents, leaf = name[4:].split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def holder(config: pytest.Config) -> _InstanceHolder:
    found = config.stash.get(_HOLDER_KEY, None)
    if found is None:
        found = config.stash[_HOLDER_KEY] = _InstanceHolder(config)
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testfleet")
    group.addoption("--testfleet-base-url", default=None, help="where HTTP scenarios send their "
                    "requests when no [tool.testfleet.sut] is declared (e.g. http://127.0.0.1:8000)")
    parser.addini("testfleet_base_url", "default for --testfleet-base-url", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: an HTTP scenario file (*.scenario.yaml) run by testfleet")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@testfleet.explore`` tests run as ``test[baseline]`` with the space's baseline values;
    exploration runs the same item with other values (see testfleet.explore)."""
    from testfleet.explorable import BASELINE_ID, space_of

    space = space_of(metafunc.function)
    if space is None:
        return
    missing = [name for name in space.names if name not in metafunc.fixturenames]
    if missing:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @testfleet.explore declares "
                                f"{', '.join(missing)}, which the test does not take as arguments")
    values = space.baseline()
    replayed = os.environ.get("TESTFLEET_REPLAY_PARAMS")
    if replayed:  # `testfleet replay VARIANT`: the same item, with the variant's values
        import json

        values.update({k: v for k, v in json.loads(replayed).items() if k in space.dimensions})
    metafunc.parametrize(space.names, [tuple(values[name] for name in space.names)],
                         ids=[BASELINE_ID])


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith((".scenario.yaml", ".scenario.yml")):
        from testfleet.adapters.scenario_items import ScenarioFile

        return ScenarioFile.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def testfleet_instance(request: pytest.FixtureRequest) -> Iterator[Any]:
    """This worker's SUT instance, started from ``[tool.testfleet.sut]``."""
    yield holder(request.config).get()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that uses the instance gets it with its variant's config (see _InstanceHolder.prepare)."""
    if uses_instance(item):
        found = item.config.stash.get(_HOLDER_KEY, None)
        if found is not None:
            found.prepare(item)


@pytest.fixture(autouse=True)
def _testfleet_sut_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the instance: if the SUT died, say so as an error and restart it."""
    yield
    if "testfleet_instance" in request.fixturenames:
        holder(request.config).check_alive()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    found = session.config.stash.get(_HOLDER_KEY, None)
    if found is not None:
        found.stop()


def uses_instance(item: pytest.Item) -> bool:
    return "testfleet_instance" in getattr(item, "fixturenames", ()) or getattr(item, "uses_instance", False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and uses_instance(item):
        instance = holder(item.config).instance
        if instance is not None:
            state = "running" if instance.alive() else f"exited with {instance.exit_code()}"
            report.sections.append((f"SUT log ({state}, last lines)", instance.tail()))
