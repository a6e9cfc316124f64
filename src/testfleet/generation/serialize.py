"""One request as one line of text: what the language-model generators read and write.

The format (version 1), fields separated by one space::

    METHOD PATH [BODY] [?QUERY]

    GET /items ?limit=10&offset=0
    POST /items {"name":"bolt","quantity":3,"price":0.5}
    PATCH /items/{id=42} {"price":1.25}
    POST /notes text:"free text, \\"quoted\\", one line"
    POST /login form:{"user":"ann","tags":["a","b"]}
    PUT /config json:null ?dry=1

``METHOD``
    The HTTP method, letters only (read case-insensitively, written upper case).
``PATH``
    The path *template* with each path parameter written in its place as ``{name=value}``
    (``/items/{id=42}`` is template ``/items/{id}``, ``path_params={"id": "42"}``, path
    ``/items/42``). Literal parts, names and values are percent-encoded, so the token holds no
    space, ``{``, ``}``, ``=`` or ``?`` of its own. A placeholder written without a value
    (``{id}``) keeps the template and leaves the parameter out of ``path_params``. The path as
    sent is rebuilt from the template and the parameters.
``BODY`` (absent when ``body_kind == "none"``)
    ``{...}`` or ``[...]``: a JSON object or array (``body_kind="json"``);
    ``json:<JSON>``: any other JSON value (a number, string, ``true``, ``null``);
    ``text:<JSON string>``: a text body, quoted and escaped as a JSON string;
    ``form:<JSON object>``: a form body (values are strings or lists of strings).
    JSON is written compactly (``","`` and ``":"``), so it never holds a newline.
``?QUERY``
    The query string, percent-encoded, repeated keys repeated in order (``?tag=a&tag=b``);
    absent when there is no query parameter. A key whose list of values is empty cannot be
    written and is left out.

Headers, status, latency, session, timestamp and source are not part of the line: a model
learns the request itself. :func:`from_text` also reads the body and the query in the other
order, and never raises: model output that is not a request gives ``None``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from testfleet.generation.records import CapturedRequest

__all__ = ["FORMAT_VERSION", "candidate_lines", "from_text", "to_text"]

FORMAT_VERSION = 1

_LITERAL_SAFE = "/:@!$&'()*+,;-._~"  # what stays readable in a path's literal parts
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_METHOD = re.compile(r"[A-Za-z]+")
_PREFIXES = ("json:", "text:", "form:")
_decoder = json.JSONDecoder()


_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _dumps(value: Any) -> str:
    """Compact JSON on one line for every reader: the characters ``str.splitlines`` breaks on
    that JSON leaves raw (NEL, LINE/PARAGRAPH SEPARATOR) are escaped too."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _LINE_BREAKS.items():
        text = text.replace(char, escaped)
    return text


def _path_token(req: CapturedRequest) -> str:
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(req.template):
        out.append(quote(req.template[pos:match.start()], safe=_LITERAL_SAFE))
        name = match.group(1)
        if name in req.path_params:
            value = quote(str(req.path_params[name]), safe="")
            out.append("{" + quote(name, safe="") + "=" + value + "}")
        else:
            out.append("{" + quote(name, safe="") + "}")
        pos = match.end()
    out.append(quote(req.template[pos:], safe=_LITERAL_SAFE))
    return "".join(out)


def _body_token(req: CapturedRequest) -> str | None:
    kind, body = req.body_kind, req.body
    if kind == "none":
        return None
    if kind == "text":
        return "text:" + _dumps(body if isinstance(body, str) else str(body))
    if kind == "form":
        return "form:" + _dumps(body)
    if isinstance(body, dict | list):
        return _dumps(body)
    return "json:" + _dumps(body)


def to_text(req: CapturedRequest) -> str:
    """The one-line form of ``req`` (see the module's docstring for the format)."""
    parts = [req.method.upper(), _path_token(req)]
    body = _body_token(req)
    if body is not None:
        parts.append(body)
    pairs = [(k, v) for k, values in req.query.items() for v in values]
    if pairs:
        parts.append("?" + urlencode(pairs, quote_via=quote, safe=""))
    return " ".join(parts)


def _plain(literal: str) -> bool:
    return "{" not in literal and "}" not in literal


def _parse_path(token: str) -> tuple[str, str, dict[str, str]] | None:
    if not token.startswith("/"):
        return None
    template: list[str] = []
    path: list[str] = []
    params: dict[str, str] = {}
    pos = 0
    for match in _PLACEHOLDER.finditer(token):
        if not _plain(token[pos:match.start()]):
            return None
        literal = unquote(token[pos:match.start()])
        template.append(literal)
        path.append(literal)
        inner = match.group(1)
        name, sep, value = inner.partition("=")
        name = unquote(name)
        if not name:
            return None
        template.append("{" + name + "}")
        if sep:
            params[name] = unquote(value)
            path.append(params[name])
        else:
            path.append("{" + name + "}")
        pos = match.end()
    rest = token[pos:]
    if not _plain(rest):
        return None
    literal = unquote(rest)
    template.append(literal)
    path.append(literal)
    return "".join(template), "".join(path), params


def _parse_body(text: str) -> tuple[Any, str, str] | None:
    """``(body, body_kind, rest)`` when ``text`` starts with a body token, else ``None``."""
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            value, end = _decoder.raw_decode(text, len(prefix))
            kind = prefix[:-1]
            if kind == "text" and not isinstance(value, str):
                raise ValueError("text body is not a JSON string")
            if kind == "form" and not isinstance(value, dict):
                raise ValueError("form body is not a JSON object")
            return value, kind, text[end:]
    if text[:1] in ("{", "["):
        value, end = _decoder.raw_decode(text)
        return value, "json", text[end:]
    return None


def _parse_query(token: str) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(token[1:], keep_blank_values=True, strict_parsing=False):
        query.setdefault(key, []).append(value)
    return query


def _from_text(line: str, source: str) -> CapturedRequest | None:
    text = line.strip()
    method_end = text.find(" ")
    if method_end <= 0:
        return None
    method = text[:method_end]
    if not _METHOD.fullmatch(method):
        return None
    rest = text[method_end:].lstrip(" ")
    path_end = rest.find(" ")
    path_token, rest = (rest, "") if path_end < 0 else (rest[:path_end], rest[path_end:].lstrip(" "))
    parsed_path = _parse_path(path_token)
    if parsed_path is None:
        return None
    template, path, params = parsed_path
    body: Any = None
    body_kind = "none"
    query: dict[str, list[str]] = {}
    seen_query = False
    while rest:
        if rest.startswith("?") and not seen_query:
            end = rest.find(" ")
            token, rest = (rest, "") if end < 0 else (rest[:end], rest[end:].lstrip(" "))
            if end >= 0 and body_kind != "none":
                return None  # something after the query that is not a body
            query = _parse_query(token)
            seen_query = True
            continue
        if body_kind != "none":
            return None
        parsed_body = _parse_body(rest)
        if parsed_body is None:
            return None
        body, body_kind, rest = parsed_body
        if rest and not rest.startswith(" "):
            return None  # JSON followed directly by more text
        rest = rest.lstrip(" ")
    return CapturedRequest(method=method.upper(), path=path, template=template,
                           path_params=params, query=query, body=body, body_kind=body_kind,
                           source=source)


def from_text(line: str, *, source: str = "") -> CapturedRequest | None:
    """The request a line written by :func:`to_text` (or by a model) stands for, or ``None``
    when the line is not one. Never raises."""
    try:
        if not isinstance(line, str) or "\n" in line.strip():
            return None
        return _from_text(line, source)
    except Exception:  # noqa: BLE001 - model output may be anything; None is the answer
        return None


_FENCE = re.compile(r"^\s*```")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+)")


def candidate_lines(text: str) -> Iterator[str]:
    """The lines of a model's answer that may be requests: blank lines and Markdown code
    fences dropped, a leading list marker (``- ``, ``* ``, ``1. ``, ``2) ``) and surrounding
    backticks removed. Every other line is yielded, garbage included, so that it is counted."""
    for raw in text.splitlines():
        if not raw.strip() or _FENCE.match(raw):
            continue
        line = _LIST_MARKER.sub("", raw, count=1).strip()
        if len(line) >= 2 and line[0] == "`" and line[-1] == "`":
            line = line.strip("`").strip()
        if line:
            yield line
