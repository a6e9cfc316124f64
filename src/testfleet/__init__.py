"""testfleet: run a pytest suite on a fleet of workers and explore what it never tried.

PYTEST_DONT_REWRITE: testfleet is a pytest plugin (entry point ``pytest11``) that its workers
import before pytest starts; pytest must not try to rewrite its asserts (it would warn that the
package was already imported, in every run).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # What a type checker (and a reader) sees: the real classes. At run time the same names are
    # imported on first use by __getattr__ below: the space types pull in numpy and the model
    # pydantic, which workers, telemetry samplers and `testfleet --help` should not pay for.
    from testfleet.explorable import explore
    from testfleet.model import Case, Outcome, Result, Run, Variant
    from testfleet.space import (
        Bool,
        Choice,
        Duration,
        Float,
        Int,
        ListOf,
        Object,
        Optional,
        Permutation,
        Size,
        Space,
        String,
        Union,
    )

__all__ = [
    "Bool",
    "Case",
    "Choice",
    "Duration",
    "Float",
    "Int",
    "ListOf",
    "Object",
    "Optional",
    "Outcome",
    "Permutation",
    "Result",
    "Run",
    "Size",
    "Space",
    "String",
    "Union",
    "Variant",
    "__version__",
    "explore",
    "metric",
]
__version__ = "0.1.0"

# where each lazily imported name lives (the same names as the TYPE_CHECKING imports above)
_LAZY = {
    **dict.fromkeys(("Bool", "Choice", "Duration", "Float", "Int", "ListOf", "Object", "Optional",
                     "Permutation", "Size", "Space", "String", "Union"), "testfleet.space"),
    **dict.fromkeys(("Case", "Outcome", "Result", "Run", "Variant"), "testfleet.model"),
    "explore": "testfleet.explorable",
}


def metric(name: str, value: float) -> None:
    """Report a custom metric for the running test: summarised per result (mean, max, p95,
    delta), stored as a time series as ``custom.<name>``, watched for anomalies. Outside a
    testfleet worker it only checks its arguments."""
    from testfleet.telemetry.custom import metric as record

    record(name, value)


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'testfleet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
