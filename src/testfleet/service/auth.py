"""Who may talk to the server: the token, the Origin of WebSockets, the upload limit, cancelling.

Binding (:func:`bind_policy`). The server binds to loopback by default (127.0.0.0/8, ::1,
``localhost``), where no token is needed: every client is a process of this machine. Any other
address needs a token: ``--token``, or one :func:`bind_policy` generates with
``secrets.token_urlsafe(32)``, which ``testfleet serve`` must print (it is the only way a user
learns it).

The token (:func:`install`, a pure ASGI middleware, so WebSockets pass through it too). When
``state.token`` is set, every HTTP request carries ``Authorization: Bearer TOKEN``; a WebSocket
carries the same header or, since a browser cannot set headers on a WebSocket, ``?token=TOKEN``
in its URL. Tokens are compared with :func:`hmac.compare_digest`. A missing or wrong token gets
401 with the JSON error body; a WebSocket is refused on its handshake (401 with the same body
where the server supports ASGI's denial response, as uvicorn does; else closed before accept
with code 1008, which the server answers with 403). Public, with or without a token (GET/HEAD
only): the dashboard page ``/`` and its files under ``/static/`` (static, they hold no data: the
page reads ``?token=`` from its own URL and sends the header and the query parameter itself),
and the API's description: ``/openapi.json``, ``/docs``, ``/redoc``. A ``?token=`` on an HTTP
request is not accepted: it would end in access logs and browser history.

The Origin. A WebSocket is accepted when it has no Origin (not a browser), or its Origin is the
server's own (the scheme and Host header of the handshake) or one of ``state.allowed_origins``;
otherwise 403 on the handshake. A browser sends any site's POST to 127.0.0.1 without asking
(a "simple" request), so an HTTP request that changes something (POST, PUT, PATCH, DELETE) from
a foreign Origin is refused (403) too. Without a token, a request whose Host header is not a
loopback name (nor the host of an allowed origin, for a proxy in front) while the server listens
on loopback is refused (403): that is DNS rebinding, a foreign site's name resolving to
127.0.0.1, whose pages would otherwise count as same-origin.

Cancelling (:func:`can_cancel`). There is one token: whoever holds it holds every run. With a
token, the middleware has already refused a request without it; :func:`can_cancel` checks again
(the endpoint should not depend on the middleware being installed). Without a token the server
is loopback-only and any local client may cancel, but never a page of another site.

Uploads (:func:`read_limited`): the body of ``POST /runs`` is read up to ``state.max_upload``
bytes, refused (413) as soon as Content-Length or the bytes read so far say it is larger.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from urllib.parse import parse_qs

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from testfleet.service.errors import ApiError, ErrorBody, error_response
from testfleet.service.state import ServiceState

__all__ = ["PUBLIC_PATHS", "PUBLIC_PREFIXES", "bind_policy", "can_cancel", "install", "is_loopback",
           "read_limited"]

#: paths anyone may GET without the token (static: no data of any run)
PUBLIC_PATHS = frozenset({"/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WS_POLICY_VIOLATION = 1008


# -- binding --------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (also written ``[::1]`` or ``::ffff:127.0.0.1``)."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])  # an IPv6 zone never makes it remote
    except ValueError:
        return False  # another name: it may resolve to anything
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def bind_policy(host: str, token: str | None) -> str | None:
    """The token the server needs when bound to ``host``: the given one; None on loopback without
    one; else a new ``secrets.token_urlsafe(32)``, which the caller must print. An empty token
    counts as none."""
    if token:
        return token
    if is_loopback(host):
        return None
    return secrets.token_urlsafe(32)


# -- what a request carries -----------------------------------------------------------------------
def _bearer(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _given_token(scope: Scope) -> str | None:
    headers = Headers(scope=scope)
    given = _bearer(headers)
    if given is None and scope["type"] == "websocket":
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        given = values[0] if values else None
    return given


def _token_ok(given: str | None, token: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def _host_name(host_header: str) -> str:
    """The name in a Host header, without the port (``[::1]:80`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _normal_origin(origin: str) -> str:
    scheme, sep, rest = origin.strip().lower().partition("://")
    rest = rest.rstrip("/")
    for default_scheme, port in (("http", ":80"), ("https", ":443")):
        if scheme == default_scheme and rest.endswith(port):
            rest = rest[: -len(port)]
    return scheme + sep + rest


def _origin_allowed(origin: str, scope: Scope, state: ServiceState) -> bool:
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    own = f"{scheme}://{Headers(scope=scope).get('host', '')}"
    allowed = {_normal_origin(own)} | {_normal_origin(o) for o in state.allowed_origins}
    return _normal_origin(origin) in allowed


def _host_allowed(host_header: str, state: ServiceState) -> bool:
    """A loopback name, or the host of an allowed origin (a proxy in front of the server)."""
    if is_loopback(_host_name(host_header)):
        return True
    hosts = {form.partition("://")[2] for o in state.allowed_origins for form in (o.lower(), _normal_origin(o))}
    return host_header.strip().lower() in hosts


def _serves_loopback(scope: Scope) -> bool:
    server = scope.get("server")  # (host, port) the server listens on; None on a Unix socket
    return server is not None and is_loopback(str(server[0]))


def _public(scope: Scope) -> bool:
    path = scope.get("path", "")
    return (scope["type"] == "http" and scope.get("method") in ("GET", "HEAD")
            and (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)))


# -- the middleware -------------------------------------------------------------------------------
def _refusal(scope: Scope, state: ServiceState) -> tuple[int, ErrorBody] | None:
    """Why this request or handshake is refused (status, error body), or None to let it through."""
    headers = Headers(scope=scope)
    websocket = scope["type"] == "websocket"
    host = headers.get("host", "")
    if not state.token and _serves_loopback(scope) and not _host_allowed(host, state):
        return 403, ErrorBody(message="this server answers loopback names only (no token is set)",
                              source="request", place="Host", expected="127.0.0.1, ::1 or localhost")
    origin = headers.get("origin")
    if origin is not None and (websocket or scope.get("method") not in _SAFE_METHODS) \
            and not _origin_allowed(origin, scope, state):
        return 403, ErrorBody(message=f"a request from a page of another origin ({origin})", source="request",
                              place="Origin", expected="no Origin, the server's own, or --allow-origin")
    if state.token and not _public(scope) and not _token_ok(_given_token(scope), state.token):
        how = "Authorization: Bearer TOKEN" + (" or ?token=TOKEN" if websocket else "")
        return 401, ErrorBody(message="a missing or wrong token", source="request", place="Authorization",
                              expected=how)
    return None


class _Guard:
    """The pure ASGI middleware :func:`install` adds (HTTP and WebSocket alike)."""

    def __init__(self, app: ASGIApp, service_app: FastAPI) -> None:
        self.app = app
        self.service_app = service_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state: ServiceState = self.service_app.state.service  # read per request: tests may swap it
        refused = _refusal(scope, state)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, body = refused
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if scope["type"] == "http":
            response = error_response(status, body.message, source=body.source, place=body.place,
                                      expected=body.expected, headers=headers)
            await response(scope, receive, send)
        else:
            await _deny_handshake(scope, receive, send, status, body)


async def _deny_handshake(scope: Scope, receive: Receive, send: Send, status: int, body: ErrorBody) -> None:
    await receive()  # websocket.connect: the handshake the answer is for
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})  # the server: 403
        return
    content = json.dumps({"error": body.model_dump()}).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(content)).encode())]})
    await send({"type": "websocket.http.response.body", "body": content})


def install(app: FastAPI) -> None:
    """Guard every request and WebSocket of ``app`` (its ``state.service`` is read per request)."""
    app.add_middleware(_Guard, service_app=app)


# -- for endpoints --------------------------------------------------------------------------------
def can_cancel(state: ServiceState, request: HTTPConnection) -> bool:
    """Whether this request may cancel a run: it carries the token (when one is set), and it is not
    from a page of another origin."""
    origin = request.headers.get("origin")
    if origin is not None and not _origin_allowed(origin, request.scope, state):
        return False
    return not state.token or _token_ok(_given_token(request.scope), state.token)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"the upload is larger than the limit of {max_bytes} bytes", source="request",
                    place="body", expected=f"at most {max_bytes} bytes (--max-upload-mb)")


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The request's body, at most ``max_bytes`` of it: raises :class:`ApiError` 413 as soon as the
    Content-Length or the bytes streamed so far exceed it (never holds more than the limit and
    one chunk), 400 for a Content-Length that is not a byte count."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.strip().isdigit()):
            raise ApiError(400, "a Content-Length that is not a byte count", source="request",
                           place="Content-Length", expected="a whole number of bytes")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)
