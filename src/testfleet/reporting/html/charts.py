"""plotly figures as one JSON block the page draws: plotly.js goes into the file once.

Each figure becomes ``{"id", "data", "layout", "template"}``; the layout's template (the same
few kB of styling in every figure) is kept once per distinct template and referred to by index.
The page's script (``assets.BOOT``) hands each to ``Plotly.newPlot``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Charts", "plotly_js"]


def plotly_js() -> str:
    """plotly's offline bundle of plotly.js (no network: the page draws with what it carries)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _finite(value: Any) -> Any:
    """NaN and infinities as null (JSON has no literal for them; plotly reads null as a gap)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class Charts:
    """The figures of one page, numbered in the order they are placed."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []
        self.templates: list[Any] = []
        self._template_index: dict[str, int] = {}

    def place(self, figure: Any) -> str:
        """Register ``figure``; the ``<div>`` that shows it (its id is ``chart-N``)."""
        chart_id = f"chart-{len(self.figures) + 1}"
        # the standard library's engine: orjson refuses a lone surrogate a test may have printed
        spec = _finite(json.loads(figure.to_json(engine="json")))
        layout = spec.get("layout") or {}
        template = layout.pop("template", None)
        index = None
        if template is not None:
            key = json.dumps(template, sort_keys=True)
            index = self._template_index.get(key)
            if index is None:
                index = self._template_index[key] = len(self.templates)
                self.templates.append(template)
        # width follows the page; a figure's own height is kept
        layout.pop("width", None)
        self.figures.append({"id": chart_id, "data": spec.get("data") or [], "layout": layout,
                             "template": index})
        return f'<div class="chart" id="{chart_id}"></div>'

    def place_all(self, figures: Sequence[Any]) -> str:
        return "\n".join(self.place(f) for f in figures)

    def payload(self) -> dict[str, Any]:
        return {"templates": self.templates, "figures": self.figures}
