"""Pictures of combinatorial coverage: pair heatmap, (p,t)-completeness curve, value-pair details.

Input is what :mod:`testfleet.space.coverage` produces (``CoverageReport.to_dict()``,
``pair_matrix``, ``pair_counts``) so the pictures can be redrawn from a stored JSON report.

``write_html`` puts every figure in one self-contained page (plotly.js inline, so it opens
offline). ``write_png`` renders through kaleido 1.x, which drives a Chrome/Chromium over a pipe
via choreographer: we find the browser ourselves (``BROWSER_PATH``, ``/usr/bin/chromium``,
``PATH``) so a missing one is a clear :class:`~testfleet.errors.UsageError`, not a traceback.
Chrome's sandbox cannot start as root; choreographer passes ``--no-sandbox`` unless
``enable_sandbox=True``, and we pin that off explicitly. MathJax is disabled because kaleido
would otherwise load it from a CDN, which stalls on machines without internet.

plotly and kaleido are imported only when a picture is made, so the rest of testfleet works
without them.
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from testfleet.atomic import atomic_write_bytes, atomic_write_text
from testfleet.errors import UsageError

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_NEEDS_CHROMIUM = "PNG export needs chromium (apt install chromium) or BROWSER_PATH set to a Chrome"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _go() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # plotly is an optional extra of testfleet
        raise UsageError("coverage pictures need plotly (pip install plotly)") from exc
    return go


def coverage_figures(report_dict: dict[str, Any], matrix: np.ndarray, names: Sequence[str], *,
                     pair_details: list[dict[str, Any]] | None = None) -> list[Figure]:
    """Heatmap of pairwise coverage, the completeness curve, then one figure per pair detail."""
    figures = [_pair_heatmap(report_dict, np.asarray(matrix, dtype=float), names),
               _completeness_curve(report_dict)]
    figures.extend(_pair_detail(detail) for detail in pair_details or [])
    return figures


def _pair_heatmap(report: dict[str, Any], matrix: np.ndarray, names: Sequence[str]) -> Figure:
    go = _go()
    k = len(names)
    if matrix.shape != (k, k):
        raise UsageError(f"pair matrix has shape {matrix.shape} for {k} dimension names")
    # covered/valid per cell comes from a 2-way report; other strengths only give the fraction
    counts: dict[tuple[int, int], str] = {}
    if report.get("strength") == 2:
        for combo in report.get("combinations", []):
            a, b = combo["indices"]
            counts[a, b] = counts[b, a] = f"{combo['covered']}/{combo['valid']} value pairs"
    hover = [[counts.get((i, j), "single values" if i == j else "")
              for j in range(k)] for i in range(k)]
    label = [str(n) for n in names]
    heat = go.Heatmap(
        z=matrix, x=label, y=label, zmin=0.0, zmax=1.0, colorscale="RdYlGn",
        customdata=hover, colorbar={"title": "covered", "tickformat": ".0%"},
        hovertemplate="%{y} × %{x}<br>%{z:.1%} covered<br>%{customdata}<extra></extra>",
        # the numbers stay legible up to ~20 dimensions; beyond that hover is the way in
        texttemplate="%{z:.0%}" if k <= 20 else None,
    )
    fig = go.Figure(heat)
    simple = report.get("simple")
    title = "Pairwise coverage: share of value pairs executed"
    if simple is not None:
        title += f"<br><sub>{report.get('strength', 2)}-way simple coverage {simple:.1%} over "
        title += f"{report.get('rows', 0)} rows; diagonal: single values</sub>"
    fig.update_layout(title=title, xaxis={"type": "category"},
                      yaxis={"type": "category", "autorange": "reversed"},
                      width=max(520, 60 + 38 * k), height=max(480, 60 + 34 * k))
    return fig


def _completeness_curve(report: dict[str, Any]) -> Figure:
    go = _go()
    points = report.get("completeness", [])
    p = [pt["p"] if isinstance(pt, dict) else pt[0] for pt in points]
    share = [pt["fraction"] if isinstance(pt, dict) else pt[1] for pt in points]
    t = report.get("strength", 2)
    fig = go.Figure()
    fractions = np.array([c["fraction"] for c in report.get("combinations", [])], dtype=float)
    if fractions.size:
        # the exact curve steps down just past each distinct combination coverage, so it is
        # drawn from the combinations; the 0.05 grid of the report is marked on top of it
        xs, ys = [0.0], [1.0]
        for value in np.unique(fractions):
            xs.append(float(value))
            ys.append(float(np.mean(fractions > value)))
        if xs[-1] < 1.0:
            xs.append(1.0)
            ys.append(0.0)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"shape": "hv"},
                                 name="exact", hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=p, y=share, mode="markers", name="p = 0, 0.05, ..., 1",
        hovertemplate="coverage ≥ %{x:.0%}: %{y:.1%} of combinations<extra></extra>",
    ))
    # the NIST chart's reading aids: M_t (worst combination) and S_t (simple coverage)
    for value, text, dash, place in ((report.get("minimum"), "M_t", "dot", "bottom left"),
                                     (report.get("simple"), "S_t", "dash", "top left")):
        if value is not None:
            fig.add_vline(x=value, line_dash=dash, line_color="grey",
                          annotation_text=f"{text} {value:.0%}", annotation_position=place)
    fig.update_layout(
        title=(f"{t}-way completeness: combinations with coverage ≥ p"
               f"<br><sub>{report.get('full_combinations', 0):.1%} of {t}-column combinations "
               "fully covered; M_t: worst combination, S_t: simple coverage</sub>"),
        xaxis={"title": "p (share of a combination's valid tuples covered)",
               "tickformat": ".0%", "range": [-0.02, 1.02]},
        yaxis={"title": "share of combinations", "tickformat": ".0%", "range": [0, 1.05]},
        width=760, height=480, legend={"x": 0.02, "y": 0.05},
    )
    return fig


def _unique_labels(labels: Sequence[Any], count: int) -> list[str]:
    # plotly merges equal category names into one cell; keep every level its own column
    text = [str(x) for x in labels] if labels else [str(i) for i in range(count)]
    seen: dict[str, int] = {}
    out = []
    for item in text:
        seen[item] = seen.get(item, 0) + 1
        out.append(item if seen[item] == 1 else f"{item} ({seen[item]})")
    return out


def _cell_text(runs: int, failed: int) -> str:
    if runs == 0:
        return "never run"
    text = f"{runs} run" + ("s" if runs != 1 else "")
    return text + (f"<br>{failed} failed" if failed else "")


def _pair_detail(detail: dict[str, Any]) -> Figure:
    go = _go()
    counts = np.asarray(detail["counts"], dtype=float)
    if counts.ndim != 2:
        raise UsageError(f"pair detail {detail.get('a')} x {detail.get('b')}: counts must be 2-D")
    failed = detail.get("failed")
    fails = np.asarray(failed, dtype=float) if failed is not None else np.zeros_like(counts)
    if fails.shape != counts.shape:
        raise UsageError(f"pair detail {detail['a']} x {detail['b']}: failed has shape "
                         f"{fails.shape}, counts {counts.shape}")
    y = _unique_labels(detail.get("a_labels") or [], counts.shape[0])
    x = _unique_labels(detail.get("b_labels") or [], counts.shape[1])
    text = [[_cell_text(int(c), int(f)) for c, f in zip(crow, frow)]
            for crow, frow in zip(counts, fails)]
    never = counts == 0
    if fails.any():
        # colour is the failure rate; unexecuted cells stay blank (NaN) and say "never run",
        # rather than look like "all passed"
        z = np.where(never, np.nan, fails / np.maximum(counts, 1))
        heat = go.Heatmap(z=z, x=x, y=y, zmin=0, zmax=1, colorscale="Reds", text=text,
                          texttemplate="%{text}", textfont={"size": 12},
                          colorbar={"title": "failed", "tickformat": ".0%"},
                          hovertemplate="%{y} × %{x}: %{text}<extra></extra>")
    else:
        z = np.where(never, np.nan, counts)
        heat = go.Heatmap(z=z, x=x, y=y, colorscale="Blues", text=text, texttemplate="%{text}",
                          textfont={"size": 12},
                          colorbar={"title": "runs"},
                          hovertemplate="%{y} × %{x}: %{text}<extra></extra>")
    fig = go.Figure(heat)
    total, bad = int(counts.sum()), int(fails.sum())
    fig.update_layout(
        title=f"{detail['a']} × {detail['b']}: runs per value pair"
              f"<br><sub>{total} runs, {bad} failed, {int(never.sum())} of {never.size} "
              "value pairs never run</sub>",
        xaxis={"title": str(detail["b"]), "type": "category"},
        yaxis={"title": str(detail["a"]), "type": "category", "autorange": "reversed"},
        width=max(560, 160 + 100 * counts.shape[1]), height=max(420, 160 + 50 * counts.shape[0]),
    )
    return fig


def write_html(figures: Sequence[Figure], path: str | os.PathLike[str], *,
               title: str = "testfleet coverage") -> None:
    """Write every figure into one self-contained HTML page (plotly.js inline), atomically."""
    parts = []
    for index, figure in enumerate(figures):
        # plotly.js (several MB) goes in once, with the first figure; the rest reuse it
        parts.append(figure.to_html(full_html=False, include_plotlyjs=index == 0,
                                    default_width="100%"))
    body = "\n".join(f'<section class="figure">{part}</section>' for part in parts)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n"
            "<style>body{font-family:sans-serif;margin:1em 2em}"
            ".figure{margin-bottom:2em}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")
    atomic_write_text(path, page)


def find_browser() -> str | None:
    """The Chrome/Chromium kaleido should drive, or ``None``.

    ``BROWSER_PATH`` first (choreographer's own override), then Debian's ``/usr/bin/chromium``,
    then the usual names on ``PATH``, then a Chrome that ``kaleido_get_chrome`` downloaded.
    """
    configured = os.environ.get("BROWSER_PATH")
    if configured:
        return configured if _executable(configured) else None
    if _executable("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    try:  # choreographer's download location; private API, so any failure means "not there"
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - best effort, the caller reports a clear error
        return None
    return found if found and _executable(found) else None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def write_png(figure: Figure, path: str | os.PathLike[str], *, width: int | None = None,
              height: int | None = None, scale: float = 1.0) -> None:
    """Render ``figure`` to a PNG file through kaleido and a local Chromium, atomically."""
    browser = find_browser()
    if browser is None:
        configured = os.environ.get("BROWSER_PATH")
        hint = f" (BROWSER_PATH={configured!r} is not an executable)" if configured else ""
        raise UsageError(_NEEDS_CHROMIUM + hint)
    try:
        import kaleido
    except ImportError as exc:
        raise UsageError("PNG export needs kaleido (pip install kaleido)") from exc
    layout = figure.layout
    opts = {"format": "png", "scale": scale,
            "width": width or layout.width or 900, "height": height or layout.height or 600}
    kopts = {"path": browser, "enable_sandbox": False, "mathjax": False}
    try:
        image = kaleido.calc_fig_sync(figure, opts=opts, kopts=kopts)
    except Exception as exc:  # a browser that crashes or hangs is an environment problem
        raise UsageError(f"PNG export through {browser} failed: {exc}") from exc
    if not isinstance(image, bytes) or not image.startswith(_PNG_MAGIC):
        raise UsageError(f"PNG export through {browser} returned no PNG image")
    atomic_write_bytes(path, image)
