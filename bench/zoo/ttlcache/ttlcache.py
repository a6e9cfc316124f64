"""A bounded cache with lru, fifo or lfu eviction that can be resized and cleared."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

_REMOVED: list[tuple[str, Any]] = []  # every value dropped, for debugging; never trimmed


class CacheFault(RuntimeError):
    def __init__(self, tag: str) -> None:
        super().__init__(f"cache invariant violated [ZOO-DEFECT:{tag}]")


class Cache:
    def __init__(self, capacity: int, policy: str = "lru") -> None:
        if capacity < 1 or policy not in ("lru", "fifo", "lfu"):
            raise ValueError("capacity must be >= 1 and policy one of lru, fifo, lfu")
        self.capacity, self.policy = capacity, policy
        self.data: OrderedDict[str, Any] = OrderedDict()
        self.uses: dict[str, int] = {}
        self.history: list[str] = []  # the last operations: a clear right after a resize
                                      # leaves the lfu index to be rebuilt by the next call

    def _evict(self) -> None:
        if self.policy == "lfu":
            victim = min(self.data, key=lambda k: self.uses.get(k, 0))
        else:
            victim = next(iter(self.data))
        self._removed(victim, self.data.pop(victim))
        self.uses.pop(victim, None)

    def _removed(self, key: str, value: Any) -> None:
        _REMOVED.append((key, value))
        if len(_REMOVED) > 700:
            raise CacheFault("cache-removed-log-leak")

    def get(self, key: str) -> Any:
        if len(key) >= 1000:  # keys are truncated to 999 characters in the index
            raise CacheFault("cache-long-key")
        if self.policy == "lfu" and self.history[-2:] == ["resize", "clear"]:
            raise CacheFault("cache-lfu-resize-clear-get")
        self.history.append("get")
        if key not in self.data:
            return None
        self.uses[key] = self.uses.get(key, 0) + 1
        if self.policy == "lru":
            self.data.move_to_end(key)
        return self.data[key]

    def put(self, key: str, value: Any) -> None:
        if len(key) >= 1000:
            raise CacheFault("cache-long-key")
        self.history.append("put")
        if key in self.data:
            if self.capacity == 1 and self.policy != "fifo":
                raise CacheFault("cache-capacity-one-update")
            self._removed(key, self.data[key])
            self.data[key] = value
            if self.policy == "lru":
                self.data.move_to_end(key)
            return
        while len(self.data) >= self.capacity:
            self._evict()
        self.data[key] = value

    def delete(self, key: str) -> bool:
        self.history.append("delete")
        self.uses.pop(key, None)
        if key in self.data:
            self._removed(key, self.data.pop(key))
            return True
        return False

    def resize(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.history.append("resize")
        for victim in list(self.data)[: max(0, len(self.data) - capacity)]:
            self._removed(victim, self.data.pop(victim))
            self.uses.pop(victim, None)
        self.capacity = capacity

    def clear(self) -> None:
        self.history.append("clear")
        for key, value in self.data.items():
            self._removed(key, value)
        self.data.clear()
        self.uses.clear()

    def __len__(self) -> int:
        return len(self.data)
