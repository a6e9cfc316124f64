"""HTTP scenario files as pytest items: ``testfleet run`` collects them next to the tests.

``tests/api/orders.scenario.yaml`` becomes the item ``tests/api/orders.scenario.yaml::<name>``.
It runs its steps (``repeat`` executions, ``concurrency`` in flight, on an async httpx client)
against this worker's SUT instance — the same one ``testfleet_instance`` gives tests, so scenario
requests are watched by the instance's telemetry — or against ``--testfleet-base-url`` when no
``[tool.testfleet.sut]`` is declared. Each request's latency is reported as the metric
``http.latency_ms`` (its mean, max and p95 land in the result's telemetry summary). A malformed
file is a collection error naming the file and the place in it; a failed expectation fails the
item with the step, the request and what was expected; a SUT that crashed during the scenario
makes it an error, as for tests.

Parameters: the scenario runs with its space's baseline values, overlaid with ``params`` given
to :meth:`ScenarioItem.with_params` (the exploration engine's variants).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from testfleet.adapters.http_scenarios import Scenario, load_scenario
# defined in testfleet.errors; re-exported from its old home
from testfleet.errors import ScenarioFailure as ScenarioFailure
from testfleet.errors import TestfleetError
from testfleet.telemetry import custom

LATENCY_METRIC = "http.latency_ms"


class ScenarioFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except TestfleetError as exc:  # a ScenarioError, or a bad constraint's SpaceError
            raise self.CollectError(str(exc)) from None
        name = scenario.name or self.path.name.split(".scenario.")[0]
        return [ScenarioItem.from_parent(self, name=name, scenario=scenario)]


class ScenarioItem(pytest.Item):
    uses_instance = True

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.params: dict[str, Any] = {}
        replayed = os.environ.get("TESTFLEET_REPLAY_PARAMS")  # `testfleet replay VARIANT`
        if replayed and scenario.params is not None:
            self.params = {k: v for k, v in json.loads(replayed).items() if k in scenario.params.dimensions}
        self.add_marker("scenario")

    def _base_url(self) -> str:
        config = self.config
        given = config.getoption("testfleet_base_url", None) or config.getini("testfleet_base_url")
        from testfleet.pytest_plugin import holder
        from testfleet.settings import load_settings

        if given:
            return str(given).rstrip("/")
        running = holder(config).info
        if running is not None:  # the instance is up: the settings were read when it started
            return str(running.base_url)
        try:
            settings, _source = load_settings([], {}, cwd=config.rootpath)
            declared = settings.sut is not None
        except Exception:  # noqa: BLE001 - the instance holder reports settings problems itself
            declared = True
        if not declared:
            raise ScenarioFailure("an HTTP scenario needs a system under test: declare "
                                  "[tool.testfleet.sut] or pass --testfleet-base-url URL")
        return str(holder(config).get().base_url)

    def runtest(self) -> None:
        base_url = self._base_url()
        scenario = self.scenario
        if scenario.repeat == 1 and scenario.concurrency == 1:
            from testfleet.adapters.scenario_run import run_scenario

            result = run_scenario(scenario, base_url, self.params)
            for step in result.steps:
                if step.latency_ms is not None:
                    custom.metric(LATENCY_METRIC, step.latency_ms)
            if not result.ok:
                raise ScenarioFailure(result.message)
            return
        from testfleet.adapters.scenario_async import run_batch

        batch = run_batch(scenario, base_url, self.params,
                          on_latency=lambda ms: custom.metric(LATENCY_METRIC, ms))
        if not batch.ok:
            raise ScenarioFailure(f"{batch.failed} of {batch.executions} executions failed; "
                                  f"first: {batch.message}")

    def teardown(self) -> None:
        from testfleet.pytest_plugin import holder

        holder(self.config).check_alive()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return f"scenario {self.name!r} ({self.path.name}): {excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"
