"""The ``openai`` generator: any OpenAI-compatible chat endpoint writes the requests.

vLLM, Ollama, llama.cpp's server, LM Studio and OpenAI itself all answer
``POST {base_url}/v1/chat/completions``. The generator sends one prompt holding the service's
request schema, a few captured requests in the one-line text form
(:mod:`testfleet.generation.serialize`) and the coverage goals (rare fields and values the
requests should include), and asks for ``n`` requests, one per line, in that form. The lines
of ``choices[0].message.content`` are read back with ``from_text``, checked by the validation
callable, and what is missing is asked for again (up to ``retries`` times), the rejected lines
and their reasons shown to the model so that it can do better.

``base_url`` may end in ``/v1`` (as the OpenAI clients write it) or not. An endpoint that cannot
be reached, answers an HTTP error or an answer that is not the chat-completions shape gives an
:class:`~testfleet.generation.llm.LLMError` saying which.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from testfleet.generation.llm import (
    GenerationResult,
    LLMError,
    Rejection,
    Validator,
    collect,
    common_headers,
    with_headers,
)
from testfleet.generation.records import CapturedRequest
from testfleet.generation.serialize import candidate_lines, to_text

__all__ = ["FORMAT_HELP", "OpenAIGenerator"]

FORMAT_HELP = """\
Each request is ONE line: METHOD PATH [BODY] [?QUERY]
- METHOD: GET, POST, PUT, PATCH, DELETE...
- PATH: the path template with each path parameter written in place as {name=value}, \
e.g. /items/{id=42}; percent-encode spaces and special characters.
- BODY (only when the request has one): a compact JSON object or array written as is, \
e.g. {"name":"bolt","quantity":3}; another JSON value as json:<value>; a text body as \
text:"<JSON string>"; a form as form:{"field":"value"}.
- ?QUERY (only when there are query parameters): a URL query string, e.g. ?limit=10&tag=a&tag=b
Examples:
GET /items ?limit=10
POST /items {"name":"bolt","quantity":3,"price":0.5}
PATCH /items/{id=42} {"price":1.25}"""

_SYSTEM = ("You write HTTP requests that test a web service. Answer with the requests only, one "
           "per line, in the exact format described, with no numbering, no commentary and no "
           "code fences.")


def _endpoint_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise LLMError(f"endpoint {base_url!r} is not an http(s) URL",
                       expected="e.g. http://127.0.0.1:8000/v1")
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


class OpenAIGenerator:
    """Requests written by a model behind an OpenAI-compatible ``/v1/chat/completions``."""

    source = "generated:openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 120.0, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = _endpoint_url(base_url)
        self.model = model
        self.timeout = timeout
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        self.calls = 0  # chat completions asked for

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- prompt --------------------------------------------------------------------------------

    def build_messages(self, n: int, *, schema: Mapping[str, Any] | None = None,
                       examples: Sequence[CapturedRequest | str] = (),
                       coverage_goals: Sequence[str] = (), prompt: str | None = None,
                       rejected: Sequence[Rejection] = ()) -> list[dict[str, str]]:
        """The chat messages asking for ``n`` requests (what :meth:`generate` sends)."""
        parts = [FORMAT_HELP]
        if schema:
            parts.append("The service's request schema (JSON):\n"
                         + json.dumps(schema, separators=(",", ":"), sort_keys=True, default=str))
        if examples:
            lines = [e if isinstance(e, str) else to_text(e) for e in examples]
            parts.append("Requests captured from production:\n" + "\n".join(lines))
        if coverage_goals:
            parts.append("Coverage goals: production rarely or never shows these, so include them "
                         "in some of your requests:\n" + "\n".join(f"- {g}" for g in coverage_goals))
        if prompt:
            parts.append(prompt)
        if rejected:
            shown = "\n".join(f"{r.text}  <- {r.reason}" for r in rejected[:20])
            parts.append("These lines of your previous answer were rejected (line <- reason); "
                         "write different, valid ones:\n" + shown)
        parts.append(f"Write {n} new, realistic and varied requests for this service, one per "
                     "line, in the format above, and nothing else.")
        return [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": "\n\n".join(parts)}]

    # -- transport -----------------------------------------------------------------------------

    def complete(self, messages: list[dict[str, str]], *, temperature: float = 0.7,
                 max_tokens: int | None = None, seed: int | None = None) -> str:
        """One chat completion: the text of ``choices[0].message.content``."""
        payload: dict[str, Any] = {"model": self.model, "messages": messages,
                                   "temperature": temperature}
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        if seed is not None:
            payload["seed"] = seed
        where = f"{self.url} (model {self.model!r})"
        self.calls += 1
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.ConnectError as exc:
            raise LLMError(f"cannot connect to {where}: {exc or 'connection refused'}; is the "
                           "server running and the URL right?") from None
        except httpx.TimeoutException:
            raise LLMError(f"{where} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"request to {where} failed: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            hint = {401: "; is the API key right?", 403: "; is the API key allowed this model?",
                    404: "; is the base URL right, and does the server serve this model?"}.get(
                response.status_code, "")
            raise LLMError(f"{where} answered HTTP {response.status_code}: "
                           f"{_snippet(response.text)}{hint}")
        try:
            data = response.json()
        except ValueError:
            raise LLMError(f"{where} answered malformed JSON: {_snippet(response.text)}",
                           expected="an OpenAI chat-completions response") from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"{where} answered JSON without choices[0].message.content: "
                           f"{_snippet(json.dumps(data, default=str))}",
                           expected="an OpenAI chat-completions response") from None
        if content is None:
            return ""
        if not isinstance(content, str):
            raise LLMError(f"{where} answered a non-text message content: {_snippet(str(content))}")
        return content

    # -- generation ----------------------------------------------------------------------------

    def generate(self, n: int, seed: int | None = None, *, schema: Mapping[str, Any] | None = None,
                 examples: Sequence[CapturedRequest] = (), coverage_goals: Sequence[str] = (),
                 prompt: str | None = None, temperature: float = 0.7,
                 max_tokens: int | None = None, validate: Validator | None = None,
                 retries: int = 3) -> GenerationResult:
        """``n`` requests written by the model and accepted by ``validate`` (a callable giving
        a reason or ``None``); missing ones asked for again up to ``retries`` times. Requests of
        an endpoint seen in ``examples`` get that endpoint's usual headers."""

        def draw(k: int, round_: int, last: list[Rejection]) -> list[str]:
            messages = self.build_messages(k, schema=schema, examples=examples,
                                           coverage_goals=coverage_goals, prompt=prompt,
                                           rejected=last)
            round_seed = None if seed is None else seed + round_
            content = self.complete(messages, temperature=temperature, max_tokens=max_tokens,
                                    seed=round_seed)
            return list(candidate_lines(content))

        check = with_headers(validate, common_headers(examples))
        return collect(n, draw, validate=check, retries=retries, source=self.source)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
