"""Parameter spaces: typed dimensions, constraints, sampling strategies, covering arrays, coverage.

Pure and deterministic for a seed: nothing here reads files, the clock or the network.
"""

from testfleet.space.composite import ListOf, Object, Optional, Permutation, Union
from testfleet.space.dimensions import (
           Bool,
           Choice,
           Dimension,
           Duration,
           Float,
           Int,
           Level,
           Size,
)
from testfleet.space.expressions import MISSING, Expression, parse
from testfleet.space.space import Space
from testfleet.space.text import String

__all__ = ["MISSING", "Bool", "Choice", "Dimension", "Duration", "Expression", "Float", "Int",
           "Level", "ListOf", "Object", "Optional", "Permutation", "Size", "Space", "String",
           "Union", "parse"]
