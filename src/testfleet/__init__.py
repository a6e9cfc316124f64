"""testfleet: run a pytest suite on a fleet of workers and explore what it never tried."""

from testfleet.model import Case, Outcome, Result, Run, Variant

__all__ = ["Case", "Outcome", "Result", "Run", "Variant", "__version__"]
__version__ = "0.1.0"
