"""The limiters never grant more than they promise: a bucket at most burst + rate x elapsed, a
window at most limit per window (a burst may straddle two windows)."""

from __future__ import annotations

import os
import threading
import time

from ratelimit import TokenBucket, WindowLimiter

import testfleet
from testfleet import Choice, Float, Int


def test_burst_is_granted_at_once() -> None:
    bucket = TokenBucket(1.0, 5)
    assert [bucket.allow() for _ in range(5)] == [True] * 5


@testfleet.explore(rate=Float(0.1, 1000.0, default=10.0), burst=Int(1, 100, default=10),
                   requests=Int(0, 200, default=20), threads=Int(1, 16, default=1))
def test_bucket_grants_at_most_its_rate(rate: float, burst: int, requests: int, threads: int) -> None:
    bucket = TokenBucket(rate, burst)
    start = time.monotonic()
    granted: list[bool] = []

    def client(n: int) -> None:
        for _ in range(n):
            granted.append(bucket.allow())

    share = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]
    pool = [threading.Thread(target=client, args=(n,)) for n in share]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - start
    bucket.check(elapsed)
    assert sum(granted) <= burst + rate * elapsed + 1
    assert sum(granted) >= min(requests, burst) or threads > 1


@testfleet.explore(limit=Int(1, 50, default=5), window=Choice([1, 10, 60, 3600]),
                   # the usual zones, those with DST, and those off the whole hour (-3:30 to +14)
                   tz=Choice(["UTC", "Europe/Berlin", "America/New_York", "America/St_Johns",
                              "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "Australia/Adelaide",
                              "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati"]),
                   requests=Int(0, 100, default=10))
def test_window_grants_at_most_limit(limit: int, window: int, tz: str, requests: int) -> None:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        limiter = WindowLimiter(limit, window)
        granted = sum(limiter.allow() for _ in range(requests))
        assert granted <= 2 * limit
        assert granted >= min(requests, limit)
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
