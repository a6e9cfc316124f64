"""The cache against a reference model: a get returns the last value put for that key or
nothing (evicted), the size never exceeds the capacity."""

from __future__ import annotations

import random

from ttlcache import Cache

import testfleet
from testfleet import Choice, Int, ListOf


def test_lru_evicts_the_least_recently_used() -> None:
    cache = Cache(2)
    cache.put("a", 1), cache.put("b", 2), cache.get("a"), cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1


@testfleet.explore(capacity=Int(1, 64, default=8), policy=Choice(["lru", "fifo", "lfu"]),
                   ops=ListOf(Choice(["put", "get", "delete", "resize", "clear"]), 0, 40),
                   key_space=Int(1, 20, default=5), key_len=Int(1, 1024, default=4),
                   resize_to=Int(1, 64, default=4), seed=Int(0, 1000, default=0))
def test_behaves_like_a_dict_that_forgets(capacity: int, policy: str, ops: list[str], key_space: int,
                                           key_len: int, resize_to: int, seed: int) -> None:
    rnd = random.Random(seed)
    cache, model = Cache(capacity, policy), {}
    for step, op in enumerate(ops):
        key = f"k{rnd.randrange(key_space)}".ljust(key_len, "_")
        if op == "put":
            cache.put(key, step)
            model[key] = step
        elif op == "get":
            got = cache.get(key)
            assert got is None or got == model.get(key), (op, key, got)
        elif op == "delete":
            cache.delete(key)
            model.pop(key, None)
        elif op == "resize":
            cache.resize(resize_to)
            capacity = resize_to
        else:
            cache.clear()
            model.clear()
        assert len(cache) <= capacity
