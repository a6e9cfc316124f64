"""One way to make a value JSON-safe, for every JSON document testfleet writes.

:func:`jsonable` returns JSON types only (``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
``float``, ``bool``, ``None``), so ``json.dumps(jsonable(x), allow_nan=False)`` never fails and
every reader (a browser's ``JSON.parse``, ``jq``, DuckDB's JSON) can read the result.

Non-finite floats (NaN, +inf, -inf) have no JSON spelling; ``json.dumps`` writes ``NaN`` and
``Infinity``, which strict parsers reject. The choice is made here, once, by the caller's
``nonfinite``:

* ``"null"`` (the default): a statistic that is not a number has no value, so ``None``
  (analysis: a p-value of a constant column, a lift over an empty group);
* ``"text"``: the value is data the user must see as it was, so its Python spelling, ``"nan"``,
  ``"inf"`` or ``"-inf"`` (a snapshot diff showing that a config's ``ratio`` became ``.inf``).

numpy scalars become Python numbers, numpy arrays and tuples lists, non-string keys their
``str``, and anything else (dates, bytes, paths) its ``repr``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["jsonable"]


def jsonable(value: Any, *, nonfinite: Literal["null", "text"] = "null") -> Any:
    """``value`` with JSON types only (see the module docstring for the choices)."""
    # numpy is not imported for this: a process that never imported it holds no numpy values
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()  # a scalar's tolist() is its Python number (or bool, str...)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return None if nonfinite == "null" else repr(float(value))
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): jsonable(v, nonfinite=nonfinite)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, nonfinite=nonfinite) for v in value]
    return repr(value)
