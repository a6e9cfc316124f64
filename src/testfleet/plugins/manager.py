"""The plugin manager: testfleet's own providers and the installed plugins, behind one registry.

:func:`build_registry` makes a :class:`pluggy.PluginManager` with the hook specifications,
registers the built-in modules by import name (imported here, lazily, so that no layer imports
a higher one), then every entry point of the group ``testfleet`` that :mod:`importlib.metadata`
sees. :func:`registry` is the process's one registry, built on first use.

Each hook is called implementation by implementation, so every provider is known by the plugin
that gave it: a name given twice is an error naming both plugins, never a silent override.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from testfleet.plugins import hookspecs
from testfleet.plugins.specs import GeneratorSpec, NotifierSpec, PluginError, ReporterSpec, SourceSpec

__all__ = ["BUILTINS", "GROUP", "PluginInfo", "Registry", "build_registry", "registry", "reset"]

GROUP = "testfleet"
"""The entry-point group plugins declare themselves in."""

BUILTINS = {
    "testfleet_add_mutation_operators": "testfleet.mutation.operators",
    "testfleet_add_trigger_metrics": "testfleet.mutation.triggers",
    "testfleet_add_generators": "testfleet.generation.generators",
    "testfleet_add_backends": "testfleet.execution.backends.builtin",
    "testfleet_add_reporters": "testfleet.reporting.reporters",
    "testfleet_add_notifiers": "testfleet.reporting.notify.builtin",
    "testfleet_add_telemetry_sources": "testfleet.telemetry.sources",
    "testfleet_run_listener": "testfleet.cli.listeners",
}
"""hook -> the module whose ``@hookimpl`` functions register testfleet's own providers. Each is
imported when its hook is first asked: a worker that only wants telemetry sources does not
import the mutation engine."""

#: hook -> what one provider is called in messages
HOOKS = {
    "testfleet_add_mutation_operators": "mutation operator",
    "testfleet_add_trigger_metrics": "trigger metric",
    "testfleet_add_telemetry_sources": "telemetry source",
    "testfleet_add_generators": "generator",
    "testfleet_add_backends": "backend",
    "testfleet_add_reporters": "reporter",
    "testfleet_add_notifiers": "notifier",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin: where it comes from."""

    name: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    value: str | None = None  # the entry point's ``module:attr``; the module for a built-in

    @property
    def label(self) -> str:
        if self.builtin:
            return f"{self.name} (built-in)"
        origin = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{self.name} ({origin})"


@dataclass
class Registry:
    """Typed questions to the plugin manager; each answer is computed once."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    builtins: dict[str, str] = field(default_factory=dict)  # hook -> module not imported yet
    _answers: dict[str, Any] = field(default_factory=dict)

    def plugins(self) -> list[PluginInfo]:
        for hook in list(self.builtins):
            self._builtin(hook)
        return sorted(self.infos.values(), key=lambda info: not info.builtin)

    def operators(self) -> dict[str, Callable[[Any], Iterable[Any]]]:
        return self._named("testfleet_add_mutation_operators", _callable)

    def trigger_metrics(self) -> dict[str, tuple[str, str]]:
        return self._named("testfleet_add_trigger_metrics", _metric)

    def telemetry_sources(self) -> dict[str, SourceSpec]:
        return self._named("testfleet_add_telemetry_sources", _of(SourceSpec))

    def generators(self) -> dict[str, GeneratorSpec]:
        return self._named("testfleet_add_generators", _of(GeneratorSpec))

    def backends(self) -> dict[str, Callable[..., Any]]:
        return self._named("testfleet_add_backends", _callable)

    def reporters(self) -> dict[str, ReporterSpec]:
        return self._named("testfleet_add_reporters", _of(ReporterSpec))

    def notifiers(self) -> dict[str, NotifierSpec]:
        return self._named("testfleet_add_notifiers", _of(NotifierSpec))

    def run_listeners(self, run: Any, settings: Any, outputs: Any = None) -> list[tuple[str, Any, bool]]:
        """``(plugin name, listener, built in)`` for each plugin that listens to this run, the
        built-in ones first."""
        out = []
        for plugin, listener in self._call("testfleet_run_listener", run=run, settings=settings,
                                           outputs=outputs or {}):
            if listener is not None:
                out.append((plugin, listener, self.infos[plugin].builtin))
        return out

    def provided(self) -> dict[str, dict[str, list[str]]]:
        """plugin -> hook -> the names it provides (``testfleet plugins``); listeners are
        listed by hook only (they are made per run)."""
        table: dict[str, dict[str, list[str]]] = {info.name: {} for info in self.plugins()}
        for hook in HOOKS:
            for name, (_value, plugin) in self._providers(hook).items():
                table[plugin].setdefault(hook, []).append(name)
        caller = self.manager.hook.testfleet_run_listener
        for impl in caller.get_hookimpls():
            table[impl.plugin_name].setdefault("testfleet_run_listener", [])
        return table

    # -- the machinery ------------------------------------------------------------------------
    def _named(self, hook: str, check: Callable[[Any], bool]) -> Any:
        if hook not in self._answers:
            found = self._providers(hook)
            for name, (value, plugin) in found.items():
                if not check(value):
                    raise PluginError(f"{HOOKS[hook]} {name!r} of plugin {self.infos[plugin].label} "
                                      f"is a {type(value).__name__}", place=hook,
                                      expected=_EXPECTED[hook])
            self._answers[hook] = {name: value for name, (value, _plugin) in found.items()}
        return self._answers[hook]

    def _providers(self, hook: str) -> dict[str, tuple[Any, str]]:
        """name -> (provider, plugin) over every implementation of ``hook``."""
        found: dict[str, tuple[Any, str]] = {}
        for plugin, given in self._call(hook):
            if isinstance(given, dict):
                pairs = list(given.items())
            elif isinstance(given, (list, tuple)):
                pairs = [(getattr(spec, "name", None), spec) for spec in given]
            else:
                raise PluginError(f"plugin {self.infos[plugin].label} returned a "
                                  f"{type(given).__name__}", place=hook,
                                  expected="a dict by name" if hook not in _LISTS else "a list of specs")
            for name, value in pairs:
                if not isinstance(name, str) or not _NAME.fullmatch(name):
                    raise PluginError(f"plugin {self.infos[plugin].label} gives a {HOOKS[hook]} "
                                      f"named {name!r}", place=hook,
                                      expected="a name of letters, digits, _ and -")
                if name in found:
                    first = self.infos[found[name][1]].label
                    raise PluginError(f"{HOOKS[hook]} {name!r} is provided twice: by {first} and "
                                      f"by {self.infos[plugin].label}", place=hook,
                                      expected="each name from one plugin only; uninstall one")
                found[name] = (value, plugin)
        return found

    def _builtin(self, hook: str) -> None:
        module = self.builtins.pop(hook, None)
        if module is not None and module not in self.infos:
            self.manager.register(importlib.import_module(module), name=module)
            self.infos[module] = PluginInfo(module, True, "testfleet", _version("testfleet"), module)

    def _call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Each implementation's answer: the built-ins first, then the plugins in the order
        their entry points were found."""
        self._builtin(hook)
        impls = getattr(self.manager.hook, hook).get_hookimpls()
        order = list(self.infos)
        impls = sorted(impls, key=lambda i: (not self.infos[i.plugin_name].builtin,
                                             order.index(i.plugin_name)))
        out = []
        for impl in impls:
            try:
                given = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:  # noqa: BLE001 - a plugin's bug becomes one message
                raise PluginError(f"plugin {self.infos[impl.plugin_name].label} failed: "
                                  f"{type(exc).__name__}: {exc}", place=hook) from exc
            out.append((impl.plugin_name, given))
        return out


_LISTS = {"testfleet_add_telemetry_sources", "testfleet_add_reporters"}
_EXPECTED = {
    "testfleet_add_mutation_operators": "a function of the rule's context yielding values",
    "testfleet_add_trigger_metrics": "a (metric, statistic) pair such as ('sut.rss_mb', 'max')",
    "testfleet_add_telemetry_sources": "a testfleet.plugins.SourceSpec",
    "testfleet_add_generators": "a testfleet.plugins.GeneratorSpec",
    "testfleet_add_backends": "a function (settings, pytest_args, workers, cwd, env) -> backend",
    "testfleet_add_reporters": "a testfleet.plugins.ReporterSpec",
    "testfleet_add_notifiers": "a testfleet.plugins.NotifierSpec",
}


def _callable(value: Any) -> bool:
    return callable(value)


def _metric(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind)


def build_registry(entry_points: Iterable[metadata.EntryPoint] | None = None,
                   builtins: dict[str, str] | None = None) -> Registry:
    """A registry of ``builtins`` (hook -> module name, default :data:`BUILTINS`) and
    ``entry_points`` (default: the group ``testfleet`` as installed)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    builtin_modules = dict(BUILTINS if builtins is None else builtins)
    if entry_points is None:
        entry_points = metadata.entry_points(group=GROUP)
    seen: set[tuple[str, str]] = set()
    for ep in entry_points:
        if (ep.name, ep.value) in seen:  # one distribution visible twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, False, dist.name if dist else None,
                          dist.version if dist else None, ep.value)
        if ep.name in infos or ep.name in builtin_modules.values():
            first = infos[ep.name].label if ep.name in infos else f"{ep.name} (built-in)"
            raise PluginError(f"two plugins are named {ep.name!r}: {first} and {info.label}",
                              place=f"entry point group {GROUP}",
                              expected="distinct entry point names; uninstall one")
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - whatever the import raised, one message
            raise PluginError(f"cannot load plugin {info.label}, entry point {ep.name} = "
                              f"{ep.value}: {type(exc).__name__}: {exc}",
                              place=f"entry point group {GROUP}",
                              expected="an importable plugin; fix or uninstall it") from exc
        try:
            manager.register(plugin, name=ep.name)
        except ValueError as exc:  # pluggy: the same object registered twice
            raise PluginError(f"plugin {info.label}: {exc}", place=f"entry point group {GROUP}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {info.label}: {exc}", place=f"entry point group {GROUP}",
                              expected="hook implementations matching testfleet's hookspecs") from exc
        infos[ep.name] = info
    try:
        manager.check_pending()  # a testfleet_* function that no hookspec knows: a typo
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc), place=f"entry point group {GROUP}",
                          expected="hooks named as in testfleet.plugins.hookspecs") from exc
    return Registry(manager, infos, builtin_modules)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def registry() -> Registry:
    """The registry of this process: built-ins and installed plugins, loaded once."""
    return build_registry()


def reset() -> None:
    """Forget the process's registry (the next question loads the plugins again)."""
    registry.cache_clear()
