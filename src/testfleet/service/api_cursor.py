"""Opaque cursors of the read API's keyset pagination.

A cursor is the sort key of the last row of a page (``base64url(JSON [kind, *key])``); the next
page is the rows whose key comes after it, so the database seeks instead of counting past an
OFFSET and a page costs the same at row 100 and at row 100,000. ``kind`` names what the key
sorts (stored results, live events...): a cursor of one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from testfleet.service.errors import ApiError

__all__ = ["decode_cursor", "encode_cursor"]

_MAX_CURSOR = 4096  # characters: a key is a few ids and numbers


def encode_cursor(kind: str, key: list[Any]) -> str:
    text = json.dumps([kind, *key], separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _bad(why: str) -> ApiError:
    return ApiError(400, f"bad cursor: {why}", source="request", place="cursor",
                    expected="the `next` value of the previous page of the same list")


def decode_cursor(cursor: str, kinds: dict[str, tuple[type, ...]]) -> tuple[str, list[Any]]:
    """(kind, key) of ``cursor``; ``kinds`` maps each kind this list accepts to the types of its
    key. Anything else is a 400 with place ``cursor``."""
    if len(cursor) > _MAX_CURSOR:
        raise _bad("too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad("not a cursor of this API") from None
    if not isinstance(data, list) or not data or data[0] not in kinds:
        raise _bad("not a cursor of this list")
    kind, key = data[0], data[1:]
    types = kinds[kind]
    if len(key) != len(types):
        raise _bad("not a cursor of this list")
    for value, want in zip(key, types, strict=True):
        # bool is an int to Python, never a key here; an int stands for a float
        ok = isinstance(value, want) and not isinstance(value, bool) or (
            want is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise _bad("not a cursor of this list")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise _bad("a key out of range")
    return kind, [float(v) if want is float else v for v, want in zip(key, types, strict=True)]
