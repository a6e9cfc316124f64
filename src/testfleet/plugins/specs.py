"""The shapes plugins hand to testfleet: what each hook's providers are.

Plain dataclasses and callables, so a plugin needs nothing of testfleet but ``hookimpl`` and
these (and may build them from its own classes). Each names what calls it and with what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from testfleet.errors import UsageError

__all__ = ["BackendFactory", "GeneratorSpec", "NotifierSpec", "OperatorFn", "PluginError",
           "Probe", "ReporterSpec", "SourceSpec"]


class PluginError(UsageError):
    """A plugin that cannot be loaded, or two providers of one name."""


#: A mutation operator: called with the rule's context (``mutation.operators.OperatorContext``:
#: ``rule``, ``dimension``, ``current``, ``rng``, the numeric bounds ``lo``/``hi`` (the rule's
#: and the dimension's, None when open), and the helpers ``base()`` (the current value as a
#: number), ``fit(x)`` (clamped and snapped to the dimension) and ``coerce(v)``); yields
#: candidate values, best first. A rule of a plugin's type may set min_value and max_value
#: (values, factor, amount and step_size belong to the built-in types). ``propose`` keeps those inside the
#: dimension, different from the current value and from each other. Every random choice must
#: come from ``ctx.rng`` (a seed reproduces the proposals).
OperatorFn = Callable[[Any], Iterable[Any]]

#: A backend: ``factory(settings, pytest_args, workers, cwd, env)`` (``env``: variables to add
#: to the workers' environment, or None) returns an object with the
#: interface of ``execution.backends.base.Backend`` (``name``, ``start()``, ``poll()``,
#: ``send()``, ``close()`` ...). ``--backend NAME`` / ``backend = "NAME"`` chooses it.
BackendFactory = Callable[[Any, list[str], int, Path, dict[str, str] | None], Any]


@dataclass(frozen=True)
class ReporterSpec:
    """A report written when a run ends.

    ``write(path, run, outcome, store)`` writes the file (``run``: ``model.Run``; ``outcome``:
    ``execution.plan.RunOutcome`` with ``results``, ``collect_errors``, ``warnings``,
    ``exploration``; ``store``: the run's ``store.db.Store``, to read) and returns the path
    written. ``setting`` is the ``Settings`` attribute
    that holds the path (``junitxml``, ``json_report``, ``md``); a plugin's reporter leaves it
    None and is asked for with ``--report NAME=PATH`` (``[tool.testfleet.reports] NAME = PATH``).
    """

    name: str
    write: Callable[[str, Any, Any, Any], Path | str]
    setting: str | None = None
    description: str = ""
    folder: bool = False  # the path is a folder (Allure's results), not a file


@dataclass(frozen=True)
class NotifierSpec:
    """A kind of notification target: ``[[tool.testfleet.notify.targets]]`` with ``kind = NAME``.

    ``target`` is the pydantic model of one such table (``kind: Literal[NAME]``, ``name``,
    ``when`` as ``reporting.notify.config``'s targets have, and its own keys; secrets only as
    ``*_env`` keys naming environment variables). ``deliver(target, summary, env, tries)`` sends
    one finished run (``summary``: ``reporting.notify.summary.RunSummary``; ``env``: the
    environment to read secrets from; ``tries``: ``reporting.notify.delivery.Tries``, which
    retries with backoff) and returns what to store with the delivery event; it raises
    ``DeliveryError`` when the delivery failed. A delivery never changes the run's result.
    """

    name: str
    deliver: Callable[..., Mapping[str, Any]]  # (target, summary, env, tries)
    target: type | None = None
    description: str = ""


@dataclass(frozen=True)
class GeneratorSpec:
    """A generative model of requests, learned by ``testfleet generate learn --generator NAME``.

    ``learn(requests, out, options)`` learns from ``requests`` (``generation.traffic``'s
    ``Request`` objects) and saves the model at ``out`` (a file, or a directory when ``folder``);
    ``options`` holds ``min_samples``, ``base_model``, ``epochs``, ``seed``. It returns the
    lines to show the user.
    """

    name: str
    learn: Callable[[list[Any], str, Mapping[str, Any]], Iterable[str]]
    folder: bool = False
    description: str = ""


class Probe(Protocol):
    def read(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class SourceSpec:
    """A telemetry source: ``factory()`` builds a probe (in the worker, before the sampler child
    is forked) whose ``read()`` returns ``{metric: value}`` at every sample. The values are
    stored as ``plugin.<name>.<metric>``, which trigger conditions accept. A ``raw`` source (a
    built-in one, ``system``) names its metrics itself, each under ``<name>.``; names outside
    that prefix are dropped, so no source can write another's metrics."""

    name: str
    factory: Callable[[], Probe]
    description: str = ""
    raw: bool = False
