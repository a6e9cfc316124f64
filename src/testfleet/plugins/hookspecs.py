"""The hook specifications: what a plugin may provide, and what each hook returns.

Every ``testfleet_add_*`` hook takes no argument and returns the plugin's providers (a dict by
name, or a list of specs carrying their names); a plugin implements only the hooks it needs.
The shapes are in :mod:`testfleet.plugins.specs`.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "testfleet"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def testfleet_add_mutation_operators() -> dict[str, Any]:
    """``{variation_type: OperatorFn}``: mutation operators a ruleset's rules may name as their
    ``variation_type``. An operator is called with the rule's context and yields candidates."""
    raise NotImplementedError


@hookspec
def testfleet_add_trigger_metrics() -> dict[str, tuple[str, str]]:
    """``{alias: (metric, statistic)}``: names a trigger condition may use, each reading one
    statistic (mean, max, p95, delta, count) of one telemetry metric (``sut.rss_mb``,
    ``plugin.<source>.<metric>`` ...)."""
    raise NotImplementedError


@hookspec
def testfleet_add_telemetry_sources() -> list[Any]:
    """``[SourceSpec]``: probes sampled beside the built-in ones in every worker."""
    raise NotImplementedError


@hookspec
def testfleet_add_generators() -> dict[str, Any]:
    """``{name: GeneratorSpec}``: generative models ``generate learn --generator NAME`` learns."""
    raise NotImplementedError


@hookspec
def testfleet_add_backends() -> dict[str, Any]:
    """``{name: BackendFactory}``: where workers run (``--backend NAME``)."""
    raise NotImplementedError


@hookspec
def testfleet_add_reporters() -> list[Any]:
    """``[ReporterSpec]``: report files written when a run ends."""
    raise NotImplementedError


@hookspec
def testfleet_add_notifiers() -> dict[str, Any]:
    """``{kind: NotifierSpec}``: targets of ``[tool.testfleet.notify]``, told when a run ends."""
    raise NotImplementedError


@hookspec
def testfleet_run_listener(run: Any, settings: Any, outputs: Any) -> Any:
    """A listener for this run (``run``: ``model.Run``; ``settings``: ``Settings``), or None.
    ``outputs`` holds what the run itself writes to: ``console`` (the terminal reporter) and
    ``events`` (the writer of ``testfleet serve``'s event stream, or None); the built-in
    listeners (the console, the service's event writer) come through this hook from them, and an
    implementation may leave the argument out.

    It may define any of ``execution.plan.Listener``'s methods: ``on_collected(total,
    deselected, workers)``, ``on_running(worker_id, nodeid)``, ``on_result(result, done,
    total)`` (every result, as it is recorded), ``on_message(text)``, ``on_exploring(budget)``,
    ``on_worker(worker_id, state, detail)``, ``on_series(worker_id, columns)``. A listener's
    exception is reported once and the listener is dropped; the run goes on."""
    raise NotImplementedError
