"""What a worker reads from and does to a collected item: its description for the coordinator,
its explorable space, a variant's parameters swapped in, and the SUT instance it runs against."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testfleet.execution.protocol import CollectedItem

if TYPE_CHECKING:  # the coordinator uses with_sut_space without loading pytest
    import pytest


def describe(item: pytest.Item) -> CollectedItem:
    """The item as the coordinator plans with it (plain data: it is pickled)."""
    path, line, name = item.location
    return {
        "nodeid": item.nodeid,
        "file": path,
        "line": None if line is None else line + 1,
        "name": name,
        "markers": sorted({m.name for m in item.iter_markers()}),
        "keywords": sorted(str(k) for k in item.keywords),
        "requires": requires_of(item),
        "params": callspec_params(item),
        "space": space_declaration(item),
        "uses_instance": uses_instance(item),
    }


def uses_instance(item: pytest.Item) -> bool:
    """Whether the item runs against the SUT instance (the fixture, or an HTTP scenario)."""
    return "testfleet_instance" in getattr(item, "fixturenames", ()) or hasattr(item, "scenario")


def callspec_params(item: pytest.Item) -> dict[str, Any]:
    """A parametrized test's parameters, as the baseline variant's params: JSON scalars kept,
    anything else by its repr (so failure analysis can group by them).

    Only values of exactly a builtin type are kept as they are: a subclass (an ``IntEnum`` or
    ``StrEnum`` member defined in the test module, numpy's scalars) would be pickled as a
    reference to a module the coordinator cannot import. An enum member becomes ``Class.NAME``.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in callspec.params.items():
        if value is None or type(value) in (bool, int, float, str):
            out[name] = value if type(value) is not str or len(value) <= 200 else value[:200]
        elif isinstance(value, enum.Enum):
            out[name] = f"{type(value).__name__}.{value.name}"[:200]
        else:
            out[name] = repr(value)[:200]
    return out


def space_declaration(item: pytest.Item, sut_space: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The ``@testfleet.explore`` space of the test, as data the coordinator can rebuild; with
    ``sut_space`` (the SUT's ``config_space`` as explored, declared) joined in when the test runs
    against the instance."""
    scenario = getattr(item, "scenario", None)  # an HTTP scenario's params are its space
    function = getattr(item, "function", None)
    space = None
    if scenario is not None:
        space = scenario.params
    elif function is not None:
        from testfleet.explorable import space_of

        space = space_of(function)
    declared = None
    if space is not None:
        from testfleet.space.declare import space_to_dict

        declared = space_to_dict(space)
    return with_sut_space(declared, sut_space) if uses_instance(item) else declared


def with_sut_space(declared: dict[str, Any] | None, sut_space: dict[str, Any] | None) -> dict[str, Any] | None:
    """A test's declared space with the instance's config explored too (dimensions ``sut.<key>``,
    both spaces' constraints); the test's own when there is no SUT space."""
    if sut_space is None:
        return declared
    own = declared or {"dimensions": {}, "constraints": []}
    return {"dimensions": {**own["dimensions"], **sut_space["dimensions"]},
            "constraints": [*own["constraints"], *sut_space["constraints"]]}


def instance_config(item: pytest.Item) -> dict[str, Any] | None:
    """The name and config of the SUT instance the item ran against (None: it used none)."""
    if not uses_instance(item):
        return None
    from testfleet.pytest_plugin import holder

    instance = holder(item.config).instance
    if instance is None:
        return None
    return {"name": instance.instance, "config": dict(instance.config)}


def configure_instance(item: pytest.Item, params: dict[str, Any] | None) -> None:
    """A variant's ``sut.*`` values reach the worker's instance (restarted when they change)."""
    if not uses_instance(item):
        return
    from testfleet.pytest_plugin import holder

    holder(item.config).configure({k: v for k, v in (params or {}).items() if k.startswith("sut.")})


@dataclass(frozen=True)
class ParamSwap:
    """A variant's values given to an item for one run; :meth:`restore` puts the item's own back."""

    item: pytest.Item
    saved: dict[str, Any]
    scenario: bool  # an HTTP scenario item reads its own ``params``; others their callspec's

    def restore(self) -> None:
        if self.scenario:
            self.item.params = self.saved  # type: ignore[attr-defined]
        else:
            self.item.callspec.params.update(self.saved)  # type: ignore[attr-defined]


def swap_params(item: pytest.Item, params: dict[str, Any] | None) -> ParamSwap | None:
    """Give a parametrized item other values for its parameters (a variant) until the swap is
    restored (None: nothing to swap). pytest reads a direct parameter from ``callspec.params``
    at setup."""
    if params and hasattr(item, "scenario"):
        swap = ParamSwap(item, dict(item.params), scenario=True)  # type: ignore[attr-defined]
        item.params = dict(params)  # type: ignore[attr-defined]
        return swap
    callspec = getattr(item, "callspec", None)
    if not params or callspec is None:
        return None
    swap = ParamSwap(item, dict(callspec.params), scenario=False)
    callspec.params.update({k: v for k, v in params.items() if k in callspec.params})
    return swap


def requires_of(item: pytest.Item) -> dict[str, Any]:
    """The test's ``requires`` markers merged, the one closest to the test winning per key."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("requires"))):
        merged.update(marker.kwargs)
    return merged


def terminal_options(config: pytest.Config) -> dict[str, Any]:
    """How pytest's own terminal would report (``-r`` characters, ``-q``/``-v`` from the command
    line or ``addopts``), so that the coordinator's console prints what pytest would."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return {"reportchars": str(getattr(reporter, "reportchars", "fE")),
            "verbosity": int(getattr(config.option, "verbose", 0) or 0)}
