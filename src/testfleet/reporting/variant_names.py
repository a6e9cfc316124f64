"""How a variant is named to a user: the test, where the variant came from and its values.

An ``@testfleet.explore`` test is collected as ``test_x[baseline]``; every explored variant runs
the same pytest item, so its node id says ``[baseline]`` too. Shown as it is, 140 different
explored failures all read ``test_x[baseline]``. Here the ``[baseline]`` part gives way to the
variant's origin and values, each value abbreviated so a 2,000-character string stays one line:
``test_x[edge: amount=-1, currency='EUR']``.
"""

from __future__ import annotations

from typing import Any

BASELINE_ID = "[baseline]"
VALUE_WIDTH = 32
SHOWN_PARAMS = 8


def abbreviate(value: Any, width: int = VALUE_WIDTH) -> str:
    """``repr(value)``, cut to ``width`` characters with ``…`` when longer; a float with at most
    six significant digits (``33.4482``, not ``33.448240737149305``)."""
    if type(value) is float:
        text = format(value, ".6g")
        text = text + ".0" if text.lstrip("-").isdigit() else text  # 0.0 stays a float
    else:
        text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def params_label(params: dict[str, Any], shown: int = SHOWN_PARAMS, width: int = VALUE_WIDTH) -> str:
    """``amount=-1, currency='EUR'``: the first ``shown`` values abbreviated, then ``+N more``."""
    parts = [f"{name if name.isprintable() else abbreviate(name, width)}={abbreviate(value, width)}"
             for name, value in list(params.items())[:shown]]
    if len(params) > shown:
        parts.append(f"+{len(params) - shown} more")
    return ", ".join(parts)


def variant_name(nodeid: str, params: dict[str, Any] | None, origin: str | None = None) -> str:
    """The test's node id with the variant's origin and values in place of ``[baseline]``."""
    if not params and (origin in (None, "baseline")):
        return nodeid
    inner = params_label(params or {})
    if origin and origin != "baseline":
        inner = f"{origin}: {inner}" if inner else origin
    if nodeid.endswith(BASELINE_ID):
        return f"{nodeid[:-len(BASELINE_ID)]}[{inner}]"
    return f"{nodeid} [{inner}]"
