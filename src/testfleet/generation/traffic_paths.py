"""Path templating: ``/users/123/orders/9f1c...`` -> ``/users/{id}/orders/{uuid}``.

First pass, one segment at a time (the first rule that matches wins; the value is
percent-decoded before it is looked at):

``{uuid}``   a UUID, 8-4-4-4-12 hex digits
``{id}``     an integer (digits only)
``{date}``   an ISO date, ``2024-05-01``, optionally with a time (``T10:00:00Z``)
``{email}``  an e-mail address
``{hex}``    8 or more hex digits with at least one digit (a hash, an object id)
``{token}``  20 or more characters of ``[A-Za-z0-9_+/=.~-]`` mixing upper case, lower case and
             digits (base64 / base64url tokens, JWTs)

Second pass, over all requests (:func:`template_all`): among the requests of one method and one
depth whose segments before position *i* have the same template, a position *i* that holds more
than ``min_distinct`` (10) distinct literal values, which are at least ``min_ratio`` (20%) of
those requests, becomes ``{name}`` (``/users/alice``, ``/users/bob``... -> ``/users/{name}``).
Fixed paths (``/health``, ``/items``) stay as they are.

A placeholder that occurs again in one path gets a suffix: ``/a/{id}/b/{id2}``; ``path_params``
maps each placeholder name (without braces) to the raw segment as sent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from urllib.parse import unquote

__all__ = ["MIN_DISTINCT", "MIN_RATIO", "classify_segment", "render", "template_all", "template_path"]

MIN_DISTINCT = 10
MIN_RATIO = 0.2

_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("uuid", re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")),
    ("id", re.compile(r"[0-9]+")),
    ("date", re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")),
    ("email", re.compile(r"[^@/\s]+@[^@/\s]+\.[A-Za-z]{2,}")),
    ("hex", re.compile(r"(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}")),
    ("token", re.compile(r"(?=.*[0-9])(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9_+/=.~-]{20,}")),
]


def classify_segment(segment: str) -> str | None:
    """The placeholder name for one path segment, or None for a literal segment."""
    if not segment:
        return None
    value = unquote(segment)
    for name, pattern in _RULES:
        if pattern.fullmatch(value):
            return name
    return None


def render(segments: Sequence[str], kinds: Sequence[str | None]) -> tuple[str, dict[str, str]]:
    """The template and path params of a path's segments, given each one's placeholder or None."""
    seen: dict[str, int] = {}
    out, params = [], {}
    for segment, kind in zip(segments, kinds, strict=True):
        if kind is None:
            out.append(segment)
            continue
        seen[kind] = seen.get(kind, 0) + 1
        name = kind if seen[kind] == 1 else f"{kind}{seen[kind]}"
        out.append("{" + name + "}")
        params[name] = segment
    return "/".join(out), params


def template_path(path: str) -> tuple[str, dict[str, str]]:
    """First pass only: ``("/users/{id}", {"id": "123"})`` for ``/users/123``."""
    segments = path.split("/")
    return render(segments, [classify_segment(s) for s in segments])


def template_all(paths: Sequence[tuple[str, str]], *, min_distinct: int = MIN_DISTINCT,
                 min_ratio: float = MIN_RATIO) -> list[tuple[str, dict[str, str]]]:
    """Both passes over ``(method, path)`` pairs: each one's ``(template, path_params)``."""
    split = [path.split("/") for _, path in paths]
    kinds: list[list[str | None]] = [[classify_segment(s) for s in segs] for segs in split]
    depth = max((len(s) for s in split), default=0)
    for position in range(depth):
        groups: dict[tuple[str, int, tuple[str, ...]], list[int]] = defaultdict(list)
        for index, ((method, _), segs) in enumerate(zip(paths, split, strict=True)):
            if len(segs) <= position or kinds[index][position] is not None or not segs[position]:
                continue
            prefix = tuple(s if k is None else "{" + k + "}"
                           for s, k in zip(segs[:position], kinds[index][:position], strict=True))
            groups[method, len(segs), prefix].append(index)
        for members in groups.values():
            distinct = {split[i][position] for i in members}
            if len(distinct) > min_distinct and len(distinct) >= min_ratio * len(members):
                for i in members:
                    kinds[i][position] = "name"
    return [render(segs, ks) for segs, ks in zip(split, kinds, strict=True)]
