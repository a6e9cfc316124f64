"""The openai generator against a real HTTP server on 127.0.0.1 speaking /v1/chat/completions."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testfleet.errors import UsageError
from testfleet.generation.llm import LLMError
from testfleet.generation.openai_gen import OpenAIGenerator
from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import GenerationError


class FakeOpenAI(ThreadingHTTPServer):
    """Answers each chat completion with the next canned reply: (status, body text)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: list[tuple[int, str]] = []
        self.received: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.paths: list[str] = []

    def reply_lines(self, *lines: str) -> None:
        self.replies.append((200, json.dumps(_completion("\n".join(lines)))))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _completion(content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.paths.append(self.path)
        self.server.auth.append(self.headers.get("authorization"))
        if self.path != "/v1/chat/completions":
            status, text = 404, '{"error":{"message":"not found"}}'
        else:
            self.server.received.append(json.loads(body))
            status, text = self.server.replies.pop(0) if self.server.replies else (
                200, json.dumps(_completion("")))
        data = text.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


SCHEMA = {"POST /items": {"type": "object", "required": ["name", "quantity", "price"],
                          "properties": {"name": {"type": "string"},
                                         "quantity": {"type": "integer", "minimum": 0},
                                         "price": {"type": "number"}}}}
EXAMPLES = [
    CapturedRequest("POST", "/items", "/items", body={"name": "bolt", "quantity": 3, "price": 0.5},
                    body_kind="json", headers={"content-type": "application/json"}),
    CapturedRequest("GET", "/items", "/items", query={"limit": ["10"]}),
]
GOALS = ["quantity = 0", "name with non-ASCII letters (e.g. 'Schraube ß')"]


def quantity_check(req: CapturedRequest) -> str | None:
    if req.endpoint == "POST /items":
        if not isinstance(req.body, dict) or not isinstance(req.body.get("quantity"), int):
            return "quantity is not an integer"
        if req.body["quantity"] < 0:
            return "quantity < 0"
    elif req.endpoint != "GET /items":
        return f"unknown endpoint {req.endpoint}"
    return None


def test_prompt_holds_schema_examples_goals_and_the_answer_is_parsed(server: FakeOpenAI) -> None:
    server.reply_lines("```", '1. POST /items {"name":"nut","quantity":0,"price":1}',
                       "- GET /items ?limit=50", "```")
    with OpenAIGenerator(server.base_url + "/v1", "qwen-test", api_key="sk-local") as gen:
        result = gen.generate(2, seed=7, schema=SCHEMA, examples=EXAMPLES, coverage_goals=GOALS,
                              validate=quantity_check)
    assert [r.endpoint for r in result.requests] == ["POST /items", "GET /items"]
    assert result.requests[0].body == {"name": "nut", "quantity": 0, "price": 1}
    assert result.requests[0].headers == {"content-type": "application/json"}  # the examples' own
    assert result.requests[1].query == {"limit": ["50"]}
    assert all(r.source == "generated:openai" for r in result.requests)
    assert (result.drawn, result.valid, result.validity_rate, result.rounds) == (2, 2, 1.0, 1)

    sent = server.received[0]
    assert server.paths == ["/v1/chat/completions"] and server.auth == ["Bearer sk-local"]
    assert sent["model"] == "qwen-test" and sent["seed"] == 7
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    text = sent["messages"][1]["content"]
    assert '"POST /items"' in text and '"quantity":{"minimum":0,"type":"integer"}' in text
    assert 'POST /items {"name":"bolt","quantity":3,"price":0.5}' in text
    assert "GET /items ?limit=10" in text
    assert "- quantity = 0" in text and "Schraube ß" in text
    assert "Write 2 new" in text


def test_garbage_and_invalid_lines_are_retried_then_reported(server: FakeOpenAI) -> None:
    server.reply_lines('POST /items {"name":"a","quantity":1,"price":2}',
                       "Sure! Here are your requests:",
                       'POST /items {"name":"b","quantity":-4,"price":2}',
                       "GET /items {broken",
                       "DELETE /users/{id=1}")
    server.reply_lines('POST /items {"name":"c","quantity":-1,"price":2}', "GET /items ?offset=5")
    server.reply_lines("nonsense again")
    with OpenAIGenerator(server.base_url, "m") as gen:  # no /v1: added
        result = gen.generate(4, seed=1, validate=quantity_check, retries=2)
    assert len(server.received) == 3 and server.paths[0] == "/v1/chat/completions"
    # round 2 asks only for what is missing, and shows the rejected lines with their reasons
    retry = server.received[1]["messages"][1]["content"]
    assert "Write 3 new" in retry
    assert 'POST /items {"name":"b","quantity":-4,"price":2}  <- quantity < 0' in retry
    assert "GET /items {broken  <- unparseable" in retry
    assert "DELETE /users/{id=1}  <- unknown endpoint DELETE /users/{id}" in retry
    assert "Write 2 new" in server.received[2]["messages"][1]["content"]
    assert [r.endpoint for r in result.requests] == ["POST /items", "GET /items"]
    assert result.shortfall == 2 and result.rounds == 3
    assert (result.drawn, result.parsed, result.valid) == (8, 5, 2)
    assert result.validity_rate == pytest.approx(2 / 8)
    assert sorted({r.reason for r in result.rejected}) == [
        "quantity < 0", "unknown endpoint DELETE /users/{id}", "unparseable"]
    assert server.received[1]["seed"] == 2


def test_a_validator_that_raises_is_a_reason_not_a_crash(server: FakeOpenAI) -> None:
    server.reply_lines("GET /items", "GET /items ?limit=1")

    def fussy(req: CapturedRequest) -> str | None:
        if not req.query:
            raise KeyError("limit")
        return None

    with OpenAIGenerator(server.base_url, "m") as gen:
        result = gen.generate(2, validate=fussy, retries=0)
    assert len(result.requests) == 1
    assert result.rejected[0].reason == "validator raised KeyError: 'limit'"


def test_refused_connection_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "m", timeout=5) as gen, \
            pytest.raises(LLMError) as info:
        gen.generate(1)
    message = str(info.value)
    assert f"cannot connect to http://127.0.0.1:{port}/v1/chat/completions (model 'm')" in message
    assert "is the server running" in message
    assert isinstance(info.value, GenerationError) and isinstance(info.value, UsageError)


def test_http_500_gives_status_and_body(server: FakeOpenAI) -> None:
    server.replies.append((500, '{"error":{"message":"CUDA out of memory"}}'))
    with OpenAIGenerator(server.base_url, "m") as gen, pytest.raises(LLMError) as info:
        gen.generate(3)
    assert "answered HTTP 500" in str(info.value) and "CUDA out of memory" in str(info.value)


def test_http_404_hints_at_the_url(server: FakeOpenAI) -> None:
    with OpenAIGenerator(server.base_url + "/v2", "m") as gen, pytest.raises(LLMError) as info:
        gen.generate(1)
    assert "answered HTTP 404" in str(info.value) and "base URL" in str(info.value)


def test_malformed_json_and_wrong_shape(server: FakeOpenAI) -> None:
    server.replies.append((200, "<html>gateway</html>"))
    server.replies.append((200, '{"choices": []}'))
    with OpenAIGenerator(server.base_url, "m") as gen:
        with pytest.raises(LLMError, match=r"answered malformed JSON: <html>gateway</html>"):
            gen.generate(1)
        with pytest.raises(LLMError, match=r"without choices\[0\]\.message\.content"):
            gen.generate(1)


def test_a_base_url_that_is_not_http() -> None:
    with pytest.raises(LLMError, match="not an http"):
        OpenAIGenerator("localhost:8000", "m")
