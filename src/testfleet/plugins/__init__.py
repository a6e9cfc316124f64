"""testfleet's plugin API: pluggy hook specifications, found through the entry-point group
``testfleet``, with testfleet's own providers registered through the very same hooks.

A plugin is a module (or any object) with ``@hookimpl`` functions, named by an entry point::

    # the plugin's pyproject.toml
    [project.entry-points.testfleet]
    example = "testfleet_plugin_example"

Eight hooks, each in :mod:`testfleet.plugins.hookspecs` with what it must return:

====================================  ======================================================
``testfleet_add_mutation_operators``  ``{variation_type: OperatorFn}``: a ruleset's rules name
                                      them; the schema's ``variation_type`` accepts them
``testfleet_add_trigger_metrics``     ``{alias: (metric, statistic)}``: names trigger
                                      conditions may use
``testfleet_add_telemetry_sources``   ``[SourceSpec]``: probes sampled beside the built-in
                                      ones; their metrics are ``plugin.<source>.<metric>``
``testfleet_add_generators``          ``{name: GeneratorSpec}``: ``generate learn --generator``
``testfleet_add_backends``            ``{name: BackendFactory}``: ``--backend NAME``
``testfleet_add_reporters``           ``[ReporterSpec]``: report files written when a run ends
``testfleet_add_notifiers``           ``{name: Notifier}``: told when a run ends
``testfleet_run_listener``            ``Listener | None``: sees the run's event stream
                                      (``on_result`` for every result ...)
====================================  ======================================================

How it fits DESIGN.md's layers: this package imports nothing of testfleet at module level but
:mod:`testfleet.errors`, so every layer may import it. The built-in providers live next to what
they register (``mutation/operators.py`` holds ``testfleet_add_mutation_operators`` for the eight
built-in variation types, ``mutation/triggers.py`` the trigger aliases,
``generation/generators.py`` the statistical and llm generators, ``execution/backends/builtin.py``
local and ray, ``reporting/reporters.py`` junit, json, md, allure and codequality,
``reporting/notify/builtin.py`` slack, webhook, email, jira and github); :mod:`~testfleet.plugins.manager`
imports those modules *by name*, lazily, on the first question, so no layer imports a higher one.
Then it loads the ``testfleet`` entry points through :mod:`importlib.metadata`, exactly the
ones a ``pip install`` made visible.

Consumers ask :func:`registry` (one cached :class:`~testfleet.plugins.manager.Registry` per
process) through typed accessors: ``operators()``, ``trigger_metrics()``, ``telemetry_sources()``,
``generators()``, ``backends()``, ``reporters()``, ``notifiers()``, ``run_listeners(...)``.
Worker processes build the same registry from the same environment, so a rule using a plugin's
operator runs there too. The telemetry sampler is a forked child that loads nothing after the
fork: its plugin probes are built before it.

Errors are one message each (:class:`PluginError`, a usage error: ``testfleet run`` exits 4):
a plugin that cannot be imported names its entry point and the error; a name provided twice
(by two plugins, or by a plugin and testfleet) names both providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from testfleet.plugins.hookspecs import hookimpl, hookspec
from testfleet.plugins.specs import (
    GeneratorSpec,
    NotifierSpec,
    PluginError,
    ReporterSpec,
    SourceSpec,
)

__all__ = ["GeneratorSpec", "NotifierSpec", "PluginError", "ReporterSpec", "SourceSpec", "hookimpl", "hookspec",
           "registry"]


if TYPE_CHECKING:
    from testfleet.plugins.manager import Registry


def registry() -> Registry:
    """The process's registry (built on first use, then cached)."""
    from testfleet.plugins.manager import registry as _registry

    return _registry()
