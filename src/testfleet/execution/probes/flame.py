"""Flame graphs of native stacks: ``perf script`` output folded, drawn as an SVG.

py-spy draws its own SVG; perf does not, so its samples are folded here (one line per distinct
stack, root first, and how many samples had it) and drawn as a plain flame graph: each frame a
box as wide as its share of the samples, its callees stacked above it, the name and the counts
in the box's tooltip (``<title>``), so a reader (or a test) finds a function by name.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from html import escape

_OFFSET = re.compile(r"\+0x[0-9a-f]+$")
WIDTH = 1200
ROW = 16


def fold_perf_script(text: str) -> Counter[tuple[str, ...]]:
    """``perf script`` output -> stacks (root first, the command's name at the root) and their
    sample counts. A sample is a header line (``comm pid time: period event:``) followed by its
    frames, innermost first (``address symbol+offset (object)``), and a blank line."""
    stacks: Counter[tuple[str, ...]] = Counter()
    comm: str | None = None
    frames: list[str] = []

    def close() -> None:
        if comm is not None:
            stacks[(comm, *reversed(frames))] += 1

    for line in text.splitlines():
        if not line.strip():
            close()
            comm, frames = None, []
        elif line[0] in " \t":
            parts = line.split(None, 1)
            if len(parts) == 2:
                symbol = parts[1].rsplit(" (", 1)[0].strip()
                frames.append(_OFFSET.sub("", symbol) or "[unknown]")
        else:
            close()
            comm, frames = line.split(None, 1)[0], []
    close()
    return stacks


def folded_lines(stacks: Counter[tuple[str, ...]]) -> list[str]:
    """The stacks as Brendan Gregg's folded format: ``a;b;c 42``."""
    return [f"{';'.join(stack)} {count}" for stack, count in sorted(stacks.items())]


def render_svg(stacks: Counter[tuple[str, ...]], title: str) -> str:
    """A flame graph of ``stacks`` as a standalone SVG document."""
    total = sum(stacks.values())
    boxes: list[str] = []
    depth = max((len(s) for s in stacks), default=0)
    height = (depth + 2) * ROW

    def draw(prefix: tuple[str, ...], members: list[tuple[tuple[str, ...], int]], x: float, level: int) -> None:
        children: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for stack, count in members:
            if len(stack) > level:
                children.setdefault(stack[level], []).append((stack, count))
        for name in sorted(children):
            group = children[name]
            samples = sum(count for _stack, count in group)
            width = WIDTH * samples / total
            y = height - (level + 2) * ROW
            label = escape(name)
            text = f'<text x="{x + 2:.1f}" y="{y + 12}">{label[: int(width / 7)]}</text>' if width > 21 else ""
            boxes.append(f'<g><title>{label} ({samples} samples, {samples / total:.1%})</title>'
                         f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}" '
                         f'fill="hsl({zlib.crc32(name.encode()) % 40 + 10},80%,60%)"/>{text}</g>')
            draw((*prefix, name), group, x, level + 1)
            x += width

    if total:
        draw((), list(stacks.items()), 0.0, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="monospace" font-size="11"><text x="4" y="12">{escape(title)} '
            f'({total} samples)</text>{"".join(boxes)}</svg>\n')
