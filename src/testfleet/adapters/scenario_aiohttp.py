"""The aiohttp engine for scenario batches: the same executions, a faster HTTP/1.1 client.

A batch is load: thousands of requests a second from one worker. httpx builds on httpcore and
h11, pure Python, and tops out near 2,000 requests/s on one core here, a fifth of Locust's
(bench/http.py); aiohttp parses HTTP with llhttp in C and keeps one efficient pool for all
connections. Executions are still the I/O-free generator of
:func:`testfleet.adapters.scenario_run.execute`: this module only sends each :class:`Call` and
hands back an :class:`Answer` holding a :class:`Reply` (the status, text and JSON an
``httpx.Response`` would give), so the checks, extractions and messages are exactly those of the
httpx runners.

The request is what httpx would send: query values and headers rendered the same way
(``true``/``false`` for booleans), JSON bodies encoded as httpx encodes them (compact, UTF-8,
``NaN`` refused), ``content`` as raw bytes. Single scenario runs keep using httpx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from testfleet.adapters.scenario_run import Call, ScenarioResult, drive_async

__all__ = ["available", "open_session", "run_execution"]


def available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def open_session(concurrency: int) -> Any:
    """One session and pool for the whole batch (aiohttp's pool does not degrade with size)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300)
    # aiohttp would otherwise add a Python-level cookie jar pass and auto-decompression checks
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 auto_decompress=True)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _query(params: Any) -> list[tuple[str, str]] | None:
    if not params:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((str(key), _text(item)))
    return pairs


class Reply:
    """The part of an ``httpx.Response`` the checks read (status, text, JSON), built without
    httpx's URL and header models, which cost more than the request itself under load."""

    __slots__ = ("_text", "content", "encoding", "headers", "status_code")

    def __init__(self, status_code: int, headers: Any, content: bytes, encoding: str | None) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.encoding = encoding or "utf-8"
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.content.decode(self.encoding, errors="replace")
        return self._text

    def json(self) -> Any:
        return json.loads(self.content)


async def _send(session: Any, call: Call) -> Reply | Exception:
    import aiohttp

    kwargs = call.kwargs
    headers = dict(kwargs.get("headers") or {})
    data: bytes | None = None
    if "json" in kwargs:
        try:
            data = json.dumps(kwargs["json"], ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode()
        except ValueError as exc:
            return exc
        headers.setdefault("Content-Type", "application/json")
    elif "content" in kwargs:
        content = kwargs["content"]
        data = content.encode() if isinstance(content, str) else content
    timeout = aiohttp.ClientTimeout(total=kwargs.get("timeout"))
    try:
        async with session.request(call.method, call.url, params=_query(kwargs.get("params")),
                                   headers=headers, data=data, timeout=timeout,
                                   allow_redirects=False) as answer:
            body = await answer.read()
            return Reply(answer.status, answer.headers, body, answer.charset)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return _as_httpx_error(exc)


def _as_httpx_error(exc: BaseException) -> Exception:
    """The httpx error for the same failure, so both engines word a failure alike."""
    import aiohttp

    text = str(exc) or type(exc).__name__
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return httpx.ConnectError(text)
    if isinstance(exc, TimeoutError):
        return httpx.TimeoutException(text or "timed out")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.InvalidURL(text)
    return httpx.TransportError(text)


async def run_execution(session: Any, scenario: Any, base_url: str, params: dict[str, Any] | None,
                        timeout: float, on_latency: Callable[[float], None] | None) -> ScenarioResult:
    """One execution of the scenario on the aiohttp session (the httpx runner's twin)."""
    return await drive_async(scenario, base_url, params, timeout,
                             lambda call: _send(session, call), on_latency)
