"""A status badge (``testfleet badge RUN -o badge.svg``): a shields.io-style flat SVG of a stored run.

``tests | 120 passed`` in green; ``tests | 3 failed, 117 passed`` in red when anything failed
(failed, timeout and crashed count as failed; errors are named apart); yellow when everything
passed but some tests were flaky; orange for an interrupted run; grey when no test ran. The
text is measured with approximate Verdana 11px widths, as shields does, so the badge fits it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from testfleet.atomic import atomic_write_text
from testfleet.model import Run, RunStatus

__all__ = ["badge_message", "badge_svg", "text_width", "write_badge"]

RED, GREEN, YELLOW, ORANGE, GREY, BLUE = "#e05d44", "#4c1", "#dfb317", "#fe7d37", "#9f9f9f", "#007ec6"
# Approximate advance widths of Verdana at 11px (pixels); anything else counts as 7.
_WIDTHS = {**dict.fromkeys("0123456789", 7.0), **dict.fromkeys("il.,:;|!'", 3.2), " ": 3.9,
           **dict.fromkeys("frtjI()[]", 4.6), **dict.fromkeys("mwMW", 10.0),
           **dict.fromkeys("abcdeghknopqsuvxyz", 6.6), **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ", 7.6)}


def text_width(text: str) -> float:
    return sum(_WIDTHS.get(ch, 7.0) for ch in text)


def badge_message(counts: Mapping[str, int], flaky: int = 0,
                  status: RunStatus = RunStatus.finished) -> tuple[str, str]:
    """(message, colour) for a run's counts: ``("3 failed, 117 passed", RED)``."""
    if status == RunStatus.running:
        return "running", BLUE
    failed = sum(counts.get(word, 0) for word in ("failed", "timeout", "crashed"))
    errors = counts.get("error", 0)
    passed = counts.get("passed", 0) + counts.get("xpassed", 0)
    skipped = counts.get("skipped", 0) + counts.get("xfailed", 0)
    parts = [f"{failed} failed"] if failed else []
    if errors:
        parts.append(f"{errors} error" + ("s" if errors > 1 else ""))
    if passed:
        parts.append(f"{passed} passed")
    if skipped:
        parts.append(f"{skipped} skipped")
    if flaky:
        parts.append(f"{flaky} flaky")
    message = ", ".join(parts) or "no tests"
    if status in (RunStatus.interrupted, RunStatus.error):
        message = f"{status.value}: {message}"
    if failed or errors:
        return message, RED
    if status in (RunStatus.interrupted, RunStatus.error):
        return message, ORANGE
    if not passed:
        return message, GREY
    return message, YELLOW if flaky else GREEN


def badge_svg(label: str, message: str, colour: str) -> str:
    """A flat, shields.io-style badge: grey label on the left, coloured message on the right."""
    left = round(text_width(label) + 10)
    right = round(text_width(message) + 10)
    width = left + right
    title = f"{label}: {message}"
    texts = []
    for text, middle in ((label, left / 2), (message, left + right / 2)):
        texts.append(f'<text x="{middle:.1f}" y="15" fill="#010101" fill-opacity=".3">{escape(text)}</text>'
                     f'<text x="{middle:.1f}" y="14">{escape(text)}</text>')
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>',
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>',
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>',
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">',
        *texts,
        "</g>",
        "</svg>",
    ]) + "\n"


def write_badge(path: str | os.PathLike[str], run: Run, label: str = "tests") -> Path:
    """Write the badge of ``run`` to ``path`` atomically; return the path."""
    message, colour = badge_message(run.counts, run.flaky, run.status)
    return atomic_write_text(path, badge_svg(label, message, colour))
