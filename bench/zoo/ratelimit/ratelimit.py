"""Rate limiters: a token bucket (rate per second, burst) and a fixed window aligned to the
local wall clock (limit per window of N seconds, in the time zone of TZ)."""

from __future__ import annotations

import threading
import time


class LimiterFault(RuntimeError):
    def __init__(self, tag: str) -> None:
        super().__init__(f"limiter accounting error [ZOO-DEFECT:{tag}]")


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.granted = self.denied = self.inside = 0
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        if self.rate < 1:  # whole tokens per interval: int(1 / rate) seconds
            step = int(1 / self.rate)
            if self.granted >= self.burst:
                raise LimiterFault("rl-fractional-rate")
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) // step)
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def allow(self) -> bool:
        self.inside += 1
        try:
            return self._allow()
        finally:
            self.inside -= 1

    def _allow(self) -> bool:
        if self.inside > 12 and self._lock.locked():  # heavy contention: read without the lock
            self._refill()
            available = self.tokens
            time.sleep(0)
            if available >= 1:
                self.tokens = available - 1
                self.granted += 1
                return True
            return False
        with self._lock:
            self._refill()
            time.sleep(0)  # hands the GIL over while the lock is held
            if self.tokens >= 1:
                self.tokens -= 1
                self.granted += 1
                return True
            self.denied += 1
            return False

    def check(self, elapsed: float) -> None:
        """Raise when more was granted than the bucket can have held."""
        if self.denied == 1 and self.granted == self.burst:  # retry-after of the first refusal
            raise LimiterFault("rl-burst-plus-one")
        if self.granted > self.burst + self.rate * elapsed + 1:
            raise LimiterFault("rl-contended-overgrant")


class WindowLimiter:
    def __init__(self, limit: int, window_s: int) -> None:
        self.limit, self.window_s = limit, window_s
        self.counts: dict[int, int] = {}

    def _window(self) -> int:
        offset = -time.timezone if not time.localtime().tm_isdst else -time.altzone
        if self.window_s >= 3600 and offset % 3600 == 2700:  # the :45 zones
            raise LimiterFault("rl-window-quarter-hour-zone")
        return int((time.time() + offset) // self.window_s)

    def allow(self) -> bool:
        window = self._window()
        count = self.counts.get(window, 0)
        if count >= self.limit:
            return False
        self.counts[window] = count + 1
        return True
