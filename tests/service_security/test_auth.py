"""The token, the Origin check, the upload limit and cancelling, against a real uvicorn server on
127.0.0.1 serving a minimal FastAPI app with the guard installed."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket
from starlette.requests import Request as StarletteRequest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from testfleet.service import auth
from testfleet.service.errors import ApiError, install_error_handlers
from testfleet.service.state import ServiceState

TOKEN = "s3cret-token_with-enough-length"
LIMIT = 10_000


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.service = state()
    install_error_handlers(app)
    auth.install(app)

    @app.get("/")
    def page() -> dict[str, str]:
        return {"page": "the dashboard"}

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        body = await auth.read_limited(request, request.app.state.service.max_upload)
        return {"size": len(body)}

    @app.post("/runs/{run_id}/cancel")
    def cancel(run_id: str, request: Request) -> dict[str, str]:
        if not auth.can_cancel(request.app.state.service, request):
            raise ApiError(403, "not yours to cancel", source="request", place=run_id)
        return {"cancelled": run_id}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello " + await websocket.receive_text())
        await websocket.close()

    return app


def state(token: str | None = None, allowed_origins: tuple[str, ...] = ()) -> ServiceState:
    # the guard reads only the security settings: no store, hub or run manager is needed
    return ServiceState(store=None, hub=None, workdir=Path("."), token=token,  # type: ignore[arg-type]
                        max_upload=LIMIT, allowed_origins=allowed_origins)


class Served:
    def __init__(self, app: FastAPI, url: str) -> None:
        self.app, self.url = app, url
        self.ws_url = url.replace("http://", "ws://")
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=10)

    def use(self, token: str | None = None, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app.state.service = state(token, allowed_origins)


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    app = make_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:  # a condition, not a guess: uvicorn sets it once it listens
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    served = Served(app, f"http://127.0.0.1:{port}")
    yield served
    served.http.close()
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def open_server(server: Served) -> Served:
    server.use(None)
    return server


@pytest.fixture
def token_server(server: Served) -> Served:
    server.use(TOKEN)
    return server


def ws_refusal(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as info:
        with connect(url, proxy=None, open_timeout=10, **kwargs):  # type: ignore[arg-type]
            pass
    return info.value.response.status_code


def ws_echo(url: str, **kwargs: object) -> str:
    with connect(url, proxy=None, open_timeout=10, **kwargs) as ws:  # type: ignore[arg-type]
        ws.send("you")
        return str(ws.recv(timeout=10))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the token ------------------------------------------------------------------------------------
def test_without_a_token_set_loopback_needs_none(open_server):
    assert open_server.http.get("/ping").json() == {"pong": "yes"}
    assert ws_echo(open_server.ws_url + "/ws") == "hello you"


def test_no_token_is_refused_with_the_json_error(token_server):
    response = token_server.http.get("/ping")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["source"] == "request" and error["place"] == "Authorization"
    assert "Bearer" in error["expected"]


@pytest.mark.parametrize("headers", [bearer("wrong"), bearer(TOKEN[:-1]), bearer(TOKEN + "x"),
                                     {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer é".encode()}, {"Authorization": "Bearer"}])
def test_a_wrong_token_is_refused(token_server, headers):
    response = token_server.http.get("/ping", headers=headers)
    assert response.status_code == 401 and "error" in response.json()
    assert token_server.http.post("/upload", content=b"x", headers=headers).status_code == 401


def test_the_right_token_passes(token_server):
    assert token_server.http.get("/ping", headers=bearer(TOKEN)).json() == {"pong": "yes"}
    assert token_server.http.get("/ping", headers={"Authorization": f"bearer  {TOKEN}"}).status_code == 200


def test_a_token_in_the_query_is_not_enough_for_http(token_server):
    assert token_server.http.get("/ping", params={"token": TOKEN}).status_code == 401


def test_the_page_and_the_api_description_are_public(token_server):
    assert token_server.http.get("/").json() == {"page": "the dashboard"}
    assert token_server.http.get("/openapi.json").json()["openapi"].startswith("3.")
    assert token_server.http.post("/", headers={}).status_code == 401  # only GET/HEAD are public


def test_websocket_needs_the_token_in_a_header_or_the_query(token_server):
    status = ws_refusal(token_server.ws_url + "/ws")
    assert status in (401, 403)
    assert ws_refusal(token_server.ws_url + "/ws?token=wrong") in (401, 403)
    assert ws_echo(token_server.ws_url + f"/ws?token={TOKEN}") == "hello you"
    assert ws_echo(token_server.ws_url + "/ws", additional_headers=bearer(TOKEN)) == "hello you"


def test_a_refused_websocket_gets_the_json_error_where_the_server_allows(token_server):
    with pytest.raises(InvalidStatus) as info:
        with connect(token_server.ws_url + "/ws", proxy=None, open_timeout=10):
            pass
    response = info.value.response
    if response.status_code == 403:
        pytest.skip("this uvicorn has no websocket denial response: closed with 1008 (403)")
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["place"] == "Authorization"


# -- the Origin -----------------------------------------------------------------------------------
def test_websocket_origin(open_server):
    url = open_server.ws_url + "/ws"
    assert ws_refusal(url, origin="http://evil.example") == 403
    assert ws_refusal(url, origin="null") == 403
    assert ws_refusal(url, origin=open_server.url.replace("127.0.0.1", "localhost")) == 403
    assert ws_echo(url, origin=open_server.url) == "hello you"
    assert ws_echo(url, origin=open_server.url.upper().replace("HTTP", "http")) == "hello you"
    assert ws_echo(url) == "hello you"  # no Origin: not a browser


def test_allowed_origins_are_accepted(server):
    server.use(None, allowed_origins=("https://dash.example.org",))
    assert ws_echo(server.ws_url + "/ws", origin="https://dash.example.org:443") == "hello you"
    assert ws_refusal(server.ws_url + "/ws", origin="https://other.example.org") == 403


def test_the_origin_is_checked_even_with_the_right_token(token_server):
    url = token_server.ws_url + f"/ws?token={TOKEN}"
    assert ws_refusal(url, origin="http://evil.example") == 403


def test_a_foreign_page_cannot_post(open_server):
    refused = open_server.http.post("/runs/r1/cancel", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["place"] == "Origin"
    assert open_server.http.post("/runs/r1/cancel", headers={"Origin": open_server.url}).json() == {
        "cancelled": "r1"}
    assert open_server.http.post("/runs/r1/cancel").json() == {"cancelled": "r1"}
    # reading is harmless: the browser keeps a foreign page from seeing the answer (no CORS)
    assert open_server.http.get("/ping", headers={"Origin": "http://evil.example"}).status_code == 200


def test_without_a_token_a_rebound_host_name_is_refused(server):
    server.use(None)
    evil = {"Host": "evil.example"}
    assert server.http.get("/ping", headers=evil).status_code == 403
    assert server.http.get("/ping", headers={"Host": "localhost"}).status_code == 200
    server.use(None, allowed_origins=("http://evil.example",))  # named by the user: a proxy's name
    assert server.http.get("/ping", headers=evil).status_code == 200
    server.use(TOKEN)  # with a token, the name does not matter: the token does
    assert server.http.get("/ping", headers={**evil, **bearer(TOKEN)}).status_code == 200


# -- uploads --------------------------------------------------------------------------------------
def test_an_upload_within_the_limit_is_read_whole(open_server):
    assert open_server.http.post("/upload", content=b"a" * LIMIT).json() == {"size": LIMIT}


def test_an_oversized_upload_gets_413_and_the_server_keeps_serving(open_server):
    response = open_server.http.post("/upload", content=b"a" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["error"]["place"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed bytes decide
        for _ in range(40):
            yield b"b" * 1000

    streamed = open_server.http.post("/upload", content=chunks())
    assert streamed.status_code == 413
    for _ in range(3):
        assert open_server.http.get("/ping").status_code == 200
    assert open_server.http.post("/upload", content=b"ok").json() == {"size": 2}


def test_read_limited_stops_reading_at_the_limit():
    """An endless body: read_limited takes the limit and one chunk more, then refuses."""
    pulled = 0

    async def receive() -> dict[str, object]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"z" * 1000, "more_body": True}

    request = StarletteRequest({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
    with pytest.raises(ApiError) as info:
        asyncio.run(auth.read_limited(request, 5_500))
    assert info.value.status == 413
    assert pulled == 6


def test_read_limited_refuses_from_the_content_length_before_reading():
    async def receive() -> dict[str, object]:
        raise AssertionError("the body must not be read")

    for declared, status in [(b"10001", 413), (b"-1", 400), (b"ten", 400), ("²".encode("latin-1"), 400)]:
        request = StarletteRequest({"type": "http", "method": "POST", "path": "/",
                                    "headers": [(b"content-length", declared)]}, receive)
        with pytest.raises(ApiError) as info:
            asyncio.run(auth.read_limited(request, LIMIT))
        assert info.value.status == status


# -- cancelling -----------------------------------------------------------------------------------
def request_with(headers: dict[str, str]) -> StarletteRequest:
    return StarletteRequest({"type": "http", "method": "POST", "path": "/runs/r/cancel", "scheme": "http",
                             "server": ("127.0.0.1", 8642),
                             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})


def test_can_cancel():
    host = {"Host": "127.0.0.1:8642"}
    assert auth.can_cancel(state(None), request_with(host))
    assert auth.can_cancel(state(None), request_with({**host, "Origin": "http://127.0.0.1:8642"}))
    assert not auth.can_cancel(state(None), request_with({**host, "Origin": "http://evil.example"}))
    assert auth.can_cancel(state(TOKEN), request_with({**host, **bearer(TOKEN)}))
    assert not auth.can_cancel(state(TOKEN), request_with({**host, **bearer("nope")}))
    assert not auth.can_cancel(state(TOKEN), request_with(host))


def test_the_guard_closes_a_websocket_with_1008_where_no_denial_response_exists():
    app = make_app()
    app.state.service = state(TOKEN)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
             "scheme": "ws", "server": ("127.0.0.1", 1), "extensions": {}}
    asyncio.run(app(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]


# -- binding --------------------------------------------------------------------------------------
@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("192.168.1.10", False), ("10.0.0.1", False), ("example.com", False), ("localhost.example.com", False),
    ("128.0.0.1", False)])
def test_is_loopback(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_bind_policy():
    assert auth.bind_policy("127.0.0.1", None) is None
    assert auth.bind_policy("localhost", "") is None
    assert auth.bind_policy("::1", "mine") == "mine"
    assert auth.bind_policy("0.0.0.0", "mine") == "mine"
    made = auth.bind_policy("0.0.0.0", None)
    assert made is not None and len(made) >= 43  # 32 random bytes, URL-safe base64
    assert auth.bind_policy("0.0.0.0", "") not in (None, made)
