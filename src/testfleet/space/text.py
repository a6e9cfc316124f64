"""String dimensions: a length range plus a regular expression or a character set.

Strings matching a pattern are drawn with ``rstr`` (a regex-to-string generator seeded from the
space's generator) and kept only when their length fits; strings over a character set draw a
length and then characters. The classes that matter for testing -- empty, ordinary, longest,
special characters, non-ASCII -- are the levels, each kept only when the declaration allows it.
"""

from __future__ import annotations

import random
import re
import string
from typing import Any

import numpy as np
import rstr

from testfleet.errors import SpaceError
from testfleet.space.dimensions import Dimension, Level

DEFAULT_CHARSET = string.ascii_letters + string.digits
#: Characters that break naive quoting, escaping, paths and format strings.
SPECIAL = "'\"\\;<>&%$`|*?{}[]\n\t"
#: The special-class representative: quoting, escaping, injection, traversal, format strings.
SPECIAL_SAMPLE = "'\";<>&%s$`|../\\{}\n"
NON_ASCII = "éü中文Жß😀"
#: Texts that break naive text handling, offered by ``edges()`` where the declaration allows
#: them: a combining mark (one character on screen, two code points), NUL, a right-to-left
#: override, control characters, and a zero-width joiner.
SPECIAL_TEXTS: tuple[tuple[str, str], ...] = (
    ("combining mark", "e\u0301"), ("nul", "\x00"), ("rtl", "\u202eabc"),
    ("control", "\x1b[0m\r\x07"), ("zero width", "a\u200db"))
#: A lone surrogate cannot be encoded as UTF-8: offered only by a charset or pattern that names
#: one, never by a free string (which a test almost always sends as UTF-8, failing itself).
LONE_SURROGATE = ("lone surrogate", "\ud800")
_PATTERN_TRIES = 200


class String(Dimension):
    """Text of ``min_len..max_len`` characters, matching ``pattern`` or drawn from ``charset``."""

    kind = "string"

    def __init__(self, min_len: int = 0, max_len: int = 16, *, pattern: str | None = None,
                 charset: str | None = None, default: str | None = None) -> None:
        if not (isinstance(min_len, int) and isinstance(max_len, int)) or min_len < 0 \
                or max_len < min_len:
            raise SpaceError(f"bad string lengths min_len={min_len!r} max_len={max_len!r}",
                             expected="0 <= min_len <= max_len")
        if pattern is not None and charset is not None:
            raise SpaceError("a string takes a pattern or a charset, not both",
                             expected="pattern= or charset=")
        if charset is not None and (not isinstance(charset, str) or not charset):
            raise SpaceError(f"charset must be a non-empty string, not {charset!r}",
                             expected="characters such as \"abc123\"")
        self.min_len, self.max_len = min_len, max_len
        self.pattern, self.charset = pattern, charset
        self._regex: re.Pattern[str] | None = None
        if pattern is not None:
            try:
                self._regex = re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise SpaceError(f"bad string pattern {pattern!r}: {exc}",
                                 expected="a Python regular expression") from None
        self.default = default
        self._check_default()
        self._levels = self._build_levels()
        if not self._levels:
            raise SpaceError(f"no string of length {min_len}..{max_len} matches {pattern!r}",
                             expected="a pattern that can produce strings of those lengths")

    # -- drawing -----------------------------------------------------------------------------
    def _draw_one(self, rnd: random.Random) -> str:
        if self._regex is not None:
            generator = rstr.Rstr(rnd)
            for _ in range(_PATTERN_TRIES):
                text: str = generator.xeger(self._regex.pattern)
                if self.min_len <= len(text) <= self.max_len and self._regex.fullmatch(text):
                    return text
            fallback: str = self._levels[rnd.randrange(len(self._levels))].value
            return fallback
        chars = self.charset or DEFAULT_CHARSET
        length = rnd.randint(self.min_len, self.max_len)
        return "".join(rnd.choice(chars) for _ in range(length))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        rnd = random.Random(int(rng.integers(0, 2**63)))
        out = np.empty(n, dtype=object)
        out[:] = [self._draw_one(rnd) for _ in range(n)]
        return out

    def contains(self, value: Any) -> bool:
        if not isinstance(value, str) or not self.min_len <= len(value) <= self.max_len:
            return False
        if self._regex is not None:
            return self._regex.fullmatch(value) is not None
        if self.charset is not None:
            return all(c in self.charset for c in value)
        return True

    # -- classes -----------------------------------------------------------------------------
    def _fit(self, base: str) -> str:
        """Repeat or cut ``base`` to a length in range (at least min_len, at most max_len)."""
        if not base:
            return base
        text = base * (self.min_len // len(base) + 1)
        return text[: max(self.min_len, min(len(base), self.max_len))]

    def _build_levels(self) -> list[Level]:
        plain = (self.charset or DEFAULT_CHARSET)
        ordinary_len = max(self.min_len, min(8, self.max_len - 1))  # shorter than the longest
        ordinary = (plain * (ordinary_len // len(plain) + 1))[:ordinary_len]
        candidates = [("empty", ""), ("ordinary", ordinary),
                      ("longest", (plain * (self.max_len // len(plain) + 1))[: self.max_len]),
                      ("special", self._fit(SPECIAL_SAMPLE)), ("non-ascii", self._fit(NON_ASCII))]
        if self._regex is not None:
            rnd = random.Random(0)
            generator = rstr.Rstr(rnd)
            found: list[str] = [generator.xeger(self._regex.pattern) for _ in range(_PATTERN_TRIES)]
            fitting = sorted({t for t in found if self.min_len <= len(t) <= self.max_len
                              and self._regex.fullmatch(t)}, key=lambda t: (len(t), t))
            # the pattern's own strings, each under the class it really belongs to
            candidates += [(_classify(t, self.max_len), t) for t in fitting]
        levels: list[Level] = []
        for _, value in candidates:
            label = _classify(value, self.max_len)  # the class it really is (charset "éü"...)
            if self.contains(value) and all(level.label != label for level in levels):
                levels.append(Level(label, value))
        order = ["empty", "ordinary", "longest", "special", "non-ascii"]
        return sorted(levels, key=lambda level: order.index(level.label))

    def levels(self) -> list[Level]:
        return list(self._levels)

    def baseline(self) -> Any:
        if self.default is not None:
            return self.default
        by_label = {level.label: level.value for level in self._levels}
        return by_label.get("ordinary", self._levels[0].value)

    def level_of(self, value: Any) -> int:
        if not self.contains(value):
            return -1
        label = _classify(value, self.max_len)
        for i, level in enumerate(self._levels):
            if level.label == label:
                return i
        return next(i for i, level in enumerate(self._levels) if level.label == "ordinary") \
            if any(level.label == "ordinary" for level in self._levels) else 0

    def edges(self) -> list[tuple[str, Any]]:
        found = [(level.label, level.value) for level in self._levels]
        plain = self.charset or DEFAULT_CHARSET
        longest = (plain * (self.max_len // len(plain) + 1))[: self.max_len]
        if self.contains(longest) and all(value != longest for _, value in found):
            found.append(("longest", longest))
        shortest = self._fit("a") if self.charset is None or "a" in self.charset else None
        if self.min_len > 0 and shortest is not None and self.contains(shortest):
            found.append(("shortest", shortest))
        specials = [*SPECIAL_TEXTS, *((LONE_SURROGATE,) if self.charset or self.pattern else ())]
        pad = (self.charset or DEFAULT_CHARSET)[0]
        for label, text in specials:
            if len(text) <= self.max_len:
                text += pad * (self.min_len - len(text))
                if self.contains(text) and all(value != text for _, value in found):
                    found.append((label, text))
        return found

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.kind, "min_len": self.min_len,
                                "max_len": self.max_len}
        if self.pattern is not None:
            spec["pattern"] = self.pattern
        if self.charset is not None:
            spec["charset"] = self.charset
        return self._with_default(spec)


def _classify(value: str, max_len: int) -> str:
    """The testing class of a string; the first class that applies wins."""
    if value == "":
        return "empty"
    if any(ord(c) > 127 for c in value):
        return "non-ascii"
    if any(c in SPECIAL for c in value):
        return "special"
    if len(value) == max_len:
        return "longest"
    return "ordinary"
