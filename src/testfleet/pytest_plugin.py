"""testfleet's pytest plugin (entry point ``pytest11``): the ``testfleet_instance`` fixture.

Declare the system under test once in ``[tool.testfleet.sut]``; a test asks for
``testfleet_instance`` and gets its worker's running instance (``base_url``, ``port``, ``pid``,
``config``, ``log_path``...). The fixture is session-scoped, and every testfleet (or
pytest-xdist) worker has a session of its own, so each worker starts and owns one instance;
under plain ``pytest`` the session has one. When a test that used the instance fails, the last
lines of the instance's log are attached to its report. When the instance dies during a test,
that test gets an error saying the SUT crashed (exit code, last log lines) and the instance is
restarted for the tests after it: the fixture's object is updated in place (new port, pid).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest

_INSTANCE_KEY = pytest.StashKey[Any]()


@pytest.fixture(scope="session")
def testfleet_instance(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This worker's SUT instance, started from ``[tool.testfleet.sut]``."""
    from testfleet.errors import TestfleetError
    from testfleet.execution.sut import SutInstance
    from testfleet.settings import load_settings

    rootpath = request.config.rootpath
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
    instance = SutInstance(spec, worker, tmp_path_factory.mktemp(f"sut-{worker}"))
    try:
        info = instance.start()
    except TestfleetError as exc:
        pytest.fail(f"the system under test did not start: {exc}", pytrace=False)
    request.config.stash[_INSTANCE_KEY] = instance
    try:
        yield info
    finally:
        request.config.stash[_INSTANCE_KEY] = None
        instance.stop()


@pytest.fixture(autouse=True)
def _testfleet_sut_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the instance: if the SUT died, say so as an error and restart it."""
    yield
    if "testfleet_instance" not in request.fixturenames:
        return
    instance = request.config.stash.get(_INSTANCE_KEY, None)
    if instance is None or instance.alive():
        return
    log = instance.tail()
    code = instance.stop()  # reaps it: the exit code is known even if it was still dying
    info = request.getfixturevalue("testfleet_instance")
    from testfleet.errors import TestfleetError

    try:
        fresh = instance.start()
        for field in dataclasses.fields(fresh):  # tests hold this object: update it in place
            setattr(info, field.name, getattr(fresh, field.name))
        after = f"restarted it on port {fresh.port} for the next tests"
    except TestfleetError as exc:
        after = f"it could not be restarted: {exc}"
    pytest.fail(f"the system under test crashed during this test (exit code {code}); {after}\n"
                f"last lines of its log:\n{log}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "testfleet_instance" in getattr(item, "fixturenames", ()):
        instance = item.config.stash.get(_INSTANCE_KEY, None)
        if instance is not None:
            state = "running" if instance.alive() else f"exited with {instance.exit_code()}"
            report.sections.append((f"SUT log ({state}, last lines)", instance.tail()))
