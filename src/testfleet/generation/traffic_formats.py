"""Readers of captured traffic: HAR, JSON Lines and combined-format access logs.

Each reader turns one file into :class:`RawRequest` records (nothing redacted or templated yet:
that is ``traffic.py``'s job) plus ``(file, line, reason)`` for every entry it could not read.
A file that cannot be opened, or whose every entry is unreadable (a HAR that is not JSON, a JSON
Lines file without one good line), raises :class:`TrafficError` naming the file and the place.

JSON Lines: one JSON object per line, blank lines skipped. Keys read (others are ignored):

``method``      HTTP method (required; any case)
``url``/``path`` absolute URL or path, may carry a query string (one of them required)
``query``       object of name -> value or list of values, added to the URL's query
``headers``     object of name -> value (names are lower-cased)
``body``        a JSON value; a string is parsed as JSON or a form when ``content-type`` says so
``status``      response status (integer)
``latency_ms``  (alias ``duration_ms``) response time in milliseconds
``timestamp``   epoch seconds, or an ISO 8601 date-time (alias ``time``)
``session``     a client/session key (hashed, never stored as given)
``client_ip``   (alias ``ip``) the client address, used for the session key when nothing better

Access logs: the common or combined format, ``ip ident user [time] "METHOD target HTTP/x"
status size ["referer" "user-agent"] [request-time]``; a request time with a decimal point is
seconds (nginx ``$request_time``), an integer is microseconds (Apache ``%D``).
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testfleet.errors import TrafficError

__all__ = ["RawRequest", "TrafficError", "detect_format", "parse_jsonl_line", "parse_log_line",
           "read_file"]

HAR, JSONL, LOG = "har", "jsonl", "log"
_EXTENSIONS = {".har": HAR, ".jsonl": JSONL, ".ndjson": JSONL, ".log": LOG}
_METHOD = re.compile(r"^[A-Za-z][A-Za-z-]{0,19}$")
_LOG_LINE = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}|-) (?P<size>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?'
    r'(?: (?P<rt>\d+(?:\.\d+)?|-))?\s*$')


@dataclass
class RawRequest:
    """One request as a capture has it, before redaction and templating."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    body_kind: str = "none"
    status: int | None = None
    latency_ms: float | None = None
    timestamp: float | None = None
    session_hint: str | None = None  # an explicit session key (JSONL ``session``, log user)
    client: str | None = None  # client IP
    source: str = ""
    fallback_session: str | None = None  # the session when nothing else names one (a HAR file)


class Malformed(ValueError):
    """One entry that cannot be read; the message is the reason reported."""


# --- shared helpers ---------------------------------------------------------------------------

def _split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path, parse_qs(parts.query, keep_blank_values=True)


def _body(value: Any, content_type: str) -> tuple[Any, str]:
    """``(body, body_kind)`` from a capture's body: JSON when it is or says so, a form, or text."""
    if value is None or value == "":
        return None, "none"
    if not isinstance(value, str):
        return value, "json"
    ctype = content_type.lower()
    if "json" in ctype or value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value), "json"
        except ValueError:
            pass
    if "x-www-form-urlencoded" in ctype:
        return _form(parse_qs(value, keep_blank_values=True)), "form"
    return value, "text"


def _form(params: dict[str, list[str]]) -> dict[str, Any]:
    return {k: v[0] if len(v) == 1 else v for k, v in params.items()}


def _iso_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        raise Malformed(f"timestamp: expected an ISO 8601 date-time, got {text[:40]!r}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise Malformed(f"{what}: expected a number, got {value!r}"[:200])
    return float(value)


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise Malformed(f"status: expected an HTTP status (100-999), got {value!r}"[:200])
    return value


def _method(value: Any) -> str:
    if not isinstance(value, str) or not _METHOD.match(value):
        raise Malformed(f"method: expected an HTTP method such as GET, got {value!r}"[:200])
    return value.upper()


# --- JSON Lines -------------------------------------------------------------------------------

def parse_jsonl_line(text: str, source: str = "") -> RawRequest:
    """One JSON Lines request (see the module docstring for its keys); :class:`Malformed` if not."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed(f"expected a JSON object, got {type(data).__name__}")
    method = _method(data.get("method"))
    target = data.get("url", data.get("path"))
    if not isinstance(target, str) or not target:
        raise Malformed("expected 'url' or 'path' as a non-empty string")
    try:
        path, query = _split_target(target)
    except ValueError as exc:
        raise Malformed(f"url: {exc}") from None
    extra = data.get("query") or {}
    if not isinstance(extra, dict):
        raise Malformed("query: expected an object of name -> value(s)")
    for key, value in extra.items():
        values = value if isinstance(value, list) else [value]
        query.setdefault(str(key), []).extend(v if isinstance(v, str) else json.dumps(v) for v in values)
    headers_in = data.get("headers") or {}
    if not isinstance(headers_in, dict):
        raise Malformed("headers: expected an object of name -> value")
    headers = {str(k).lower(): v if isinstance(v, str) else json.dumps(v) for k, v in headers_in.items()}
    body, kind = _body(data.get("body"), headers.get("content-type", ""))
    latency = data.get("latency_ms", data.get("duration_ms"))
    stamp = data.get("timestamp", data.get("time"))
    if isinstance(stamp, str):
        timestamp: float | None = _iso_time(stamp)
    else:
        timestamp = None if stamp is None else _number(stamp, "timestamp")
    session = data.get("session")
    client = data.get("client_ip", data.get("ip"))
    return RawRequest(
        method=method, path=path, query=query, headers=headers, body=body, body_kind=kind,
        status=_status(data.get("status")),
        latency_ms=None if latency is None else _number(latency, "latency_ms"),
        timestamp=timestamp,
        session_hint=None if session is None else str(session),
        client=None if client is None else str(client), source=source)


# --- access logs ------------------------------------------------------------------------------

def _unescape(text: str) -> str:
    return re.sub(r"\\(x[0-9a-fA-F]{2}|.)",
                  lambda m: chr(int(m[1][1:], 16)) if m[1].startswith("x") and len(m[1]) == 3 else m[1],
                  text)


def parse_log_line(text: str, source: str = "") -> RawRequest:
    """One common/combined access-log line; :class:`Malformed` if it is not one."""
    match = _LOG_LINE.match(text)
    if match is None:
        raise Malformed("not a common/combined access-log line "
                        '(ip - user [time] "METHOD path HTTP/x" status size "referer" "agent")')
    request = _unescape(match["request"]).split(" ")
    if len(request) not in (2, 3) or not _METHOD.match(request[0]) or not request[1]:
        raise Malformed(f"not an HTTP request line: {match['request'][:60]!r}")
    try:
        stamp = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except (ValueError, OverflowError, OSError):
        raise Malformed(f"time: expected dd/Mon/yyyy:HH:MM:SS +zzzz, got {match['time'][:40]!r}") from None
    try:
        path, query = _split_target(request[1])
    except ValueError as exc:
        raise Malformed(f"request target: {exc}") from None
    headers = {}
    for name, group in (("referer", "referer"), ("user-agent", "ua")):
        value = match[group]
        if value not in (None, "", "-"):
            headers[name] = _unescape(value)
    rt = match["rt"]
    latency = None
    if rt not in (None, "-"):
        latency = float(rt) * 1000 if "." in rt else int(rt) / 1000
    user = match["user"]
    return RawRequest(method=request[0].upper(), path=path, query=query, headers=headers,
                      status=None if match["status"] == "-" else int(match["status"]),
                      latency_ms=latency, timestamp=stamp,
                      session_hint=None if user == "-" else f"user:{user}", client=match["ip"],
                      source=source)


# --- HAR --------------------------------------------------------------------------------------

def _pairs(items: Any, what: str) -> list[tuple[str, str]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise Malformed(f"{what}: expected a list of {{name, value}}")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise Malformed(f"{what}: expected {{name, value}} objects")
        value = item.get("value", "")
        out.append((item["name"], value if isinstance(value, str) else json.dumps(value)))
    return out


def _har_entry(entry: Any, source: str) -> RawRequest:
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise Malformed("entry without a 'request' object")
    req = entry["request"]
    method = _method(req.get("method"))
    url = req.get("url")
    if not isinstance(url, str) or not url:
        raise Malformed("request.url: expected a non-empty string")
    try:
        path, query = _split_target(url)
    except ValueError as exc:
        raise Malformed(f"request.url: {exc}") from None
    listed = _pairs(req.get("queryString"), "request.queryString")
    if listed:
        query = {}
        for name, value in listed:
            query.setdefault(name, []).append(value)
    headers: dict[str, str] = {}
    for name, value in _pairs(req.get("headers"), "request.headers"):
        name = name.lower()
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers repeat the method and URL
        sep = "; " if name == "cookie" else ", "
        headers[name] = headers[name] + sep + value if name in headers else value
    cookies = _pairs(req.get("cookies"), "request.cookies")
    if cookies and "cookie" not in headers:
        headers["cookie"] = "; ".join(f"{n}={v}" for n, v in cookies)
    body, kind = None, "none"
    post = req.get("postData")
    if post is not None:
        if not isinstance(post, dict):
            raise Malformed("request.postData: expected an object")
        mime = post.get("mimeType") or headers.get("content-type", "")
        mime = mime if isinstance(mime, str) else ""
        params = _pairs(post.get("params"), "request.postData.params")
        text = post.get("text")
        if params and not text:
            form: dict[str, list[str]] = {}
            for name, value in params:
                form.setdefault(name, []).append(value)
            body, kind = _form(form), "form"
        elif isinstance(text, str):
            body, kind = _body(text, mime)
        elif text is not None:
            raise Malformed("request.postData.text: expected a string")
    response = entry.get("response")
    status = None
    if isinstance(response, dict) and response.get("status") not in (None, 0):
        status = _status(response.get("status"))
    elapsed = entry.get("time")
    latency = None if elapsed is None else _number(elapsed, "time")
    started = entry.get("startedDateTime")
    timestamp = _iso_time(started) if isinstance(started, str) else None
    client = entry.get("_clientAddress") if isinstance(entry.get("_clientAddress"), str) else None
    return RawRequest(method=method, path=path, query=query, headers=headers, body=body,
                      body_kind=kind, status=status,
                      latency_ms=latency if latency is not None and latency >= 0 else None,
                      timestamp=timestamp, client=client, source=source)


def _entry_lines(text: str, count: int) -> list[int] | None:
    """The line each entry of ``log.entries`` starts on, or None when they cannot be located."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r'"entries"\s*:\s*\[', text):
        pos, lines = match.end(), []
        try:
            while True:
                while pos < len(text) and text[pos] in " \t\r\n,":
                    pos += 1
                if pos >= len(text) or text[pos] == "]":
                    break
                lines.append(text.count("\n", 0, pos) + 1)
                _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            continue
        if len(lines) == count:
            return lines
    return None


def read_har(text: str, name: str) -> tuple[list[RawRequest], list[tuple[str, int, str]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrafficError(f"not valid JSON: {exc.msg}", source=name,
                           place=f"line {exc.lineno}, column {exc.colno}",
                           expected="a HAR file (JSON with log.entries)") from None
    except RecursionError:
        raise TrafficError("JSON nested too deeply", source=name,
                           expected="a HAR file (JSON with log.entries)") from None
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise TrafficError("no log.entries list", source=name, place="log.entries",
                           expected="a HAR file (JSON object with log.entries: [...])")
    lines = _entry_lines(text, len(entries)) or list(range(1, len(entries) + 1))
    requests, malformed = [], []
    for index, (entry, line) in enumerate(zip(entries, lines, strict=True)):
        try:
            request = _har_entry(entry, f"{name}:{line}")
            request.fallback_session = f"har:{name}"
            requests.append(request)
        except (Malformed, RecursionError) as exc:
            malformed.append((name, line, f"log.entries[{index}]: {exc}"))
    if entries and not requests:
        _, line, reason = malformed[0]
        raise TrafficError(f"no entry could be read: {reason}", source=name, place=f"line {line}",
                           expected="HAR entries with request.method and request.url")
    return requests, malformed


def read_lines(data: bytes, name: str, fmt: str) -> tuple[list[RawRequest], list[tuple[str, int, str]]]:
    parse = parse_jsonl_line if fmt == JSONL else parse_log_line
    requests, malformed = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            malformed.append((name, number, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
            continue
        if not line.strip():
            continue
        try:
            requests.append(parse(line, f"{name}:{number}"))
        except (Malformed, RecursionError) as exc:
            malformed.append((name, number, str(exc) or type(exc).__name__))
    if malformed and not requests:
        _, number, reason = malformed[0]
        what = "a JSON Lines request" if fmt == JSONL else "an access-log line"
        raise TrafficError(f"no line could be read as {what}: {reason}", source=name,
                           place=f"line {number}",
                           expected="one JSON object per line" if fmt == JSONL
                           else 'combined log format: ip - user [time] "METHOD path HTTP/x" status size')
    return requests, malformed


def detect_format(path: Path, data: bytes) -> str:
    """``har``, ``jsonl`` or ``log``: by extension, else by the first non-blank content."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _EXTENSIONS and suffixes[-1] != ".log":
        return _EXTENSIONS[suffixes[-1]]
    head = data.lstrip()[:1]
    first = next((ln for ln in data.split(b"\n") if ln.strip()), b"").decode("utf-8", "replace").strip()
    if head == b"{":
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict) and "log" in doc:
            return HAR
        try:
            return JSONL if isinstance(json.loads(first), dict) else HAR
        except (ValueError, RecursionError):
            return HAR  # reported as not valid JSON, with its line and column
    if head == b"[":
        return HAR  # reported as not a HAR document
    if suffixes and suffixes[-1] == ".log" or _LOG_LINE.match(first):
        return LOG
    raise TrafficError("unrecognised traffic format", source=str(path), place="line 1",
                       expected="a .har, .jsonl/.ndjson or access-log (.log) file")


def read_file(path: str | Path) -> tuple[list[RawRequest], list[tuple[str, int, str]]]:
    """Read one capture by its format; :class:`TrafficError` when it cannot be read at all."""
    path = Path(path)
    name = str(path)
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TrafficError(f"cannot read the file: {reason}", source=name,
                           expected="a readable HAR, JSON Lines or access-log file") from None
    fmt = detect_format(path, data)
    if fmt == HAR:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TrafficError(f"not UTF-8 text: {exc.reason}", source=name,
                               place=f"byte {exc.start}", expected="a HAR file in UTF-8") from None
        return read_har(text, name)
    return read_lines(data, name, fmt)
