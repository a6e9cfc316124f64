"""testfleet: run a pytest suite on a fleet of workers and explore what it never tried.

PYTEST_DONT_REWRITE: testfleet is a pytest plugin (entry point ``pytest11``) that its workers
import before pytest starts; pytest must not try to rewrite its asserts (it would warn that the
package was already imported, in every run).
"""

from typing import Any

_MODEL_NAMES = ("Case", "Outcome", "Result", "Run", "Variant")

_SPACE_NAMES = ("Bool", "Choice", "Duration", "Float", "Int", "ListOf", "Object", "Optional",
                "Permutation", "Size", "Space", "String", "Union")

__all__ = ["Case", "Outcome", "Result", "Run", "Variant", "__version__", "explore", "metric",
           *_SPACE_NAMES]
__version__ = "0.1.0"


def metric(name: str, value: float) -> None:
    """Report a custom metric for the running test: summarised per result (mean, max, p95,
    delta), stored as a time series as ``custom.<name>``, watched for anomalies. Outside a
    testfleet worker it only checks its arguments."""
    from testfleet.telemetry.custom import metric as record

    record(name, value)


def __getattr__(name: str) -> Any:
    # The space types pull in numpy; workers and `testfleet --help` should not pay for that.
    if name in _SPACE_NAMES:
        import testfleet.space as space
        return getattr(space, name)
    if name in _MODEL_NAMES:  # pydantic: not for processes that only sample telemetry
        import testfleet.model as model
        return getattr(model, name)
    if name == "explore":
        from testfleet.explorable import explore
        return explore
    raise AttributeError(f"module 'testfleet' has no attribute {name!r}")
