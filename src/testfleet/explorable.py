"""``@testfleet.explore``: declare what may vary in a pytest test (the module is ``explorable`` so
that importing it never shadows the ``testfleet.explore`` decorator with a module).

::

    @testfleet.explore(payload_size=Int(100, 1000, step=100), jitter_ms=Float(0, 500),
                       order=Permutation(["create", "update", "delete"]),
                       constraints=["payload_size < 800 or jitter_ms < 100"])
    def test_upload(testfleet_instance, payload_size, jitter_ms, order):
        ...

The test receives the values as arguments. Under plain ``pytest`` (and in a ``testfleet run``
without ``--explore``) it runs once, with the space's baseline values, as the parametrized item
``test_upload[baseline]``; ``testfleet run --explore`` runs the same item again with other points
of the space (the worker swaps the parameter values before each run), each a variant of the
case with its own id. The decorator only attaches the space: pytest's parametrization is done by
the plugin (``pytest_generate_tests``), so a module that uses it needs nothing else imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from testfleet.errors import SpaceError
from testfleet.space.dimensions import Dimension
from testfleet.space.space import Space

__all__ = ["SPACE_ATTRIBUTE", "explore", "space_of"]

SPACE_ATTRIBUTE = "__testfleet_space__"
BASELINE_ID = "baseline"
_F = TypeVar("_F", bound=Callable[..., Any])


def explore(*, constraints: Iterable[str] = (), **dimensions: Dimension) -> Callable[[_F], _F]:
    """Attach a parameter space (``name=Dimension`` keyword arguments) to a test function."""
    if not dimensions:
        raise SpaceError("@testfleet.explore needs at least one dimension, e.g. size=Int(1, 10)")
    for name, dim in dimensions.items():
        if not isinstance(dim, Dimension):
            raise SpaceError(f"@testfleet.explore({name}=...): expected a dimension such as "
                             f"Int(1, 10) or Choice(['a', 'b']), got {type(dim).__name__}")
    space = Space(dimensions, list(constraints))
    space.check_satisfiable()

    def attach(function: _F) -> _F:
        setattr(function, SPACE_ATTRIBUTE, space)
        return function

    return attach


def space_of(function: Any) -> Space | None:
    """The space ``@explore`` attached to ``function`` (or to the function it wraps)."""
    target = getattr(function, "__func__", function)
    space = getattr(target, SPACE_ATTRIBUTE, None)
    return space if isinstance(space, Space) else None
