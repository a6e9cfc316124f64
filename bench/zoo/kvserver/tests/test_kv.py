"""The key-value protocol as documented: values come back as stored, keys longer than max_key
are refused with a message, eviction keeps at most max_keys keys, errors never close the
connection."""

from __future__ import annotations

import string

import testfleet
from testfleet import Int, Permutation, String

VALUE_CHARS = string.printable


def test_set_then_get(kv) -> None:
    assert kv.call(op="set", key="a", value="1") == {"ok": True}
    assert kv.call(op="get", key="a") == {"ok": True, "value": "1"}


@testfleet.explore(key=String(1, 260, default="user:1"), value=String(0, 200, charset=VALUE_CHARS, default="v"))
def test_roundtrip(kv, limits, key: str, value: str) -> None:
    answer = kv.call(op="set", key=key, value=value)
    if len(key.encode()) > limits["max_key"]:
        assert answer["ok"] is False and "longer" in answer["error"], answer
        return
    assert answer == {"ok": True}, answer
    assert kv.call(op="get", key=key) == {"ok": True, "value": value}


@testfleet.explore(order=Permutation(["set", "get", "incr", "expire", "del"]))
def test_operation_sequences(kv, order: list[str]) -> None:
    kv.call(op="set", key="counter", value="5")
    for op in order:
        extra = {"value": "7"} if op == "set" else {"seconds": 0} if op == "expire" else {}
        answer = kv.call(op=op, key="counter", **extra)
        assert answer["ok"] or "not an integer" in answer.get("error", ""), f"{op}: {answer}"


@testfleet.explore(keys=Int(1, 200, default=10), value_len=Int(0, 2000, default=10))
def test_bulk_load(kv, limits, keys: int, value_len: int) -> None:
    for i in range(keys):
        answer = kv.call(op="set", key=f"bulk:{i}", value="x" * value_len)
        assert answer == {"ok": True}, f"set #{i}: {answer}"
    stats = kv.call(op="stats")
    assert stats["ok"] and stats["keys"] <= limits["max_keys"], stats
