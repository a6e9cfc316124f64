"""Trying again: exponential backoff under one deadline, for HTTP requests and anything else.

A notifier that makes several requests (Jira: search, create, comment; GitHub: create, then update
in batches) retries each request on its own, so a retry never repeats a request that already took
effect (a second check run, a duplicate issue). What is retried: connection errors and timeouts,
HTTP 408, 429 and 5xx (a ``Retry-After`` is honoured, within ``max_delay``). Any other 4xx is the
request's fault and fails at once. No wait outlasts the deadline shared by all targets: when the
next wait would pass it, the delivery fails with what the last try said.

Error texts name the host, never the URL: a webhook URL is often the secret itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from testfleet.reporting.notify.config import Delivery

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A try that did not work; ``retryable`` says whether another try may."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.detail: dict[str, Any] = {}  # what was done before it failed (issues created...)


@dataclass
class Tries:
    """Counts the tries of one target's delivery and keeps them within policy and deadline."""

    policy: Delivery
    deadline: float  # time.monotonic() by which every try must have ended
    sleep: Callable[[float], None] = time.sleep
    attempts: int = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, action: Callable[[], T]) -> T:
        """``action()``, tried up to ``attempts`` times with backoff; its last error if all fail."""
        for number in range(1, self.policy.attempts + 1):
            if self.remaining() <= 0:
                raise DeliveryError("the notification deadline passed", retryable=False)
            self.attempts += 1
            try:
                return action()
            except DeliveryError as exc:
                if not exc.retryable or number == self.policy.attempts:
                    raise
                delay = min(self.policy.max_delay, self.policy.backoff * 2 ** (number - 1))
                if exc.retry_after is not None:
                    delay = min(self.policy.max_delay, max(delay, exc.retry_after))
                if delay >= self.remaining():
                    raise DeliveryError(f"{exc} (no time left to try again before the deadline)",
                                        retryable=False) from None
                self.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def timeout(self) -> float:
        return max(0.05, min(self.policy.timeout, self.remaining()))


class Http:
    """HTTP for one target's delivery: each request tried as :class:`Tries` says."""

    def __init__(self, tries: Tries, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.tries = tries
        self.client = httpx.Client(headers=headers or {}, auth=auth, follow_redirects=False)

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response of a request that succeeded (2xx), or a :class:`DeliveryError`."""
        return self.tries.run(lambda: self._once(method, url, **kwargs))

    def _once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        host = urlsplit(url).netloc or url.split("/", 1)[0]
        try:
            response = self.client.request(method, url, timeout=self.tries.timeout(), **kwargs)
        except httpx.TimeoutException:
            raise DeliveryError(f"{host} did not answer in time") from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"cannot reach {host}: {_reason(exc)}") from None
        if response.is_success:
            return response
        status = response.status_code
        body = " ".join(response.text.split())[:200]
        message = f"HTTP {status} from {method} {host}{urlsplit(url).path if _path_is_public(url) else ''}"
        message += f": {body}" if body else ""
        return_after = _retry_after(response.headers.get("retry-after"))
        raise DeliveryError(message, retryable=status in RETRY_STATUS, retry_after=return_after)


def _path_is_public(url: str) -> bool:
    # REST paths (/rest/api/3/issue, /repos/o/r/check-runs) help; webhook paths hold tokens
    path = urlsplit(url).path
    return path.startswith(("/rest/", "/repos/"))


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff's own delay stands





def secret(env: Any, name: str | None, what: str) -> str:
    """The value of the environment variable ``name`` (``what`` it holds, for the message)."""
    value = env.get(name) if name else None
    if not value:
        raise DeliveryError(f"the environment variable {name} ({what}) is not set", retryable=False)
    return str(value)
__all__ = ["DeliveryError", "Http", "Tries", "secret"]
