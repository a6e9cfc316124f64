"""Ingest captured traffic: read, key by session, redact, template paths, group by endpoint.

``ingest(paths)`` reads HAR files (``.har``), JSON Lines (``.jsonl``/``.ndjson``) and
common/combined access logs (``.log``; other names are sniffed, ``.gz`` is decompressed); the
keys and fields each format gives are listed in :mod:`.traffic_formats`. Unreadable entries are
counted in ``report.malformed`` as ``(file, line, reason)`` and the rest is kept; a file that
cannot be read at all, or an empty capture, raises :class:`TrafficError`.

Session key (for call sequences), taken BEFORE redaction and stored only as
``"s-" + sha256(...)[:16]``: an explicit ``session`` (JSON Lines) or log user, else the session
cookie (or the whole Cookie header), else Authorization / an API-key header, else client IP +
User-Agent, else (HAR) the file.

Redaction replaces with :data:`REDACTED` and counts in ``report.redacted``:

* headers ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Api-Key``
  and every header whose name looks secret (below);
* query parameters, form fields and JSON body fields at any depth whose names look secret:
  ``password``/``passwd``/``passphrase``, ``secret``, ``token`` (``access_token``,
  ``refresh_token``...), ``api_key``/``apikey``, ``access_key``, ``private_key``, ``session``,
  ``auth``/``authorization``, ``ssn``, ``credit_card``/``card_number``/``cc_number``,
  ``cvv``/``cvc`` (camelCase and dashes are read as underscores: ``apiKey``, ``X-Api-Key``);
* string values shaped like a card number (15-19 digits passing the Luhn check, spaces or dashes
  allowed) or a US SSN (``123-45-6789``), whatever their field is called;
* the user's ``redact`` list: a plain name matches that header, query parameter or body field at
  any depth; a dotted path names one place: ``query.NAME``, ``headers.NAME``, ``body.a.b`` or
  ``a.b`` (from the body's root; list items are walked through). Case-insensitive.

Paths are templated as :mod:`.traffic_paths` describes; the endpoint is ``METHOD template``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.generation.records import REDACTED, CapturedRequest, IngestReport
from testfleet.generation.traffic_formats import RawRequest, TrafficError, read_file
from testfleet.generation.traffic_paths import template_all, template_path

__all__ = ["SECRET_HEADERS", "Redactor", "TrafficError", "check_samples", "group_by_endpoint",
           "ingest", "is_secret_name", "session_key", "template_path"]

SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "x-auth-token", "x-access-token", "x-refresh-token", "x-csrf-token", "x-xsrf-token",
    "x-amz-security-token", "x-session-token", "x-goog-api-key",
})
_SECRET = re.compile(
    r"pass(word|wd|phrase)|secret|token|api_?key|access_?key|private_?key|session|sessid"
    r"|credit_?card|card_?num|cc_?num|(^|_)(auth|authorization|ssn|cvv|cvc|passwd|pwd)(_|$)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CARD = re.compile(r"\d(?:[ -]?\d){14,18}")
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_SESSION_COOKIE = re.compile(r"sess|sid|auth|token|login", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a header, parameter or field name looks like it holds a secret."""
    normal = re.sub(r"[^a-z0-9]+", "_", _CAMEL.sub("_", name).lower())
    return bool(_SECRET.search(normal))


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def is_secret_value(value: str) -> bool:
    """A card number (Luhn-valid, 15-19 digits) or a US social security number."""
    if _SSN.fullmatch(value):
        return True
    return bool(_CARD.fullmatch(value)) and _luhn(re.sub(r"[ -]", "", value))


@dataclass(frozen=True)
class Redactor:
    """The user's ``redact`` list, read once: plain names and dotted paths per part."""

    names: frozenset[str] = frozenset()
    query: frozenset[str] = frozenset()
    headers: frozenset[str] = frozenset()
    body: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def from_list(cls, fields: Iterable[str]) -> Redactor:
        names, query, headers, body = set(), set(), set(), set()
        for index, raw in enumerate(fields):
            if not isinstance(raw, str) or not raw.strip() or any(not p for p in raw.strip().split(".")):
                raise TrafficError(f"bad field to redact: {raw!r}", place=f"redact[{index}]",
                                   expected="a field name or a dotted path such as body.user.email")
            parts = raw.strip().lower().split(".")
            if len(parts) == 1:
                names.add(parts[0])
            elif parts[0] == "query" and len(parts) == 2:
                query.add(parts[1])
            elif parts[0] in ("headers", "header") and len(parts) == 2:
                headers.add(parts[1])
            else:
                body.add(tuple(parts[1:] if parts[0] == "body" else parts))
        return cls(frozenset(names), frozenset(query), frozenset(headers), frozenset(body))

    def headers_of(self, headers: dict[str, str]) -> tuple[dict[str, str], int]:
        out, count = {}, 0
        for name, value in headers.items():
            if value != REDACTED and (name in SECRET_HEADERS or is_secret_name(name)
                                      or name in self.names or name in self.headers):
                out[name], count = REDACTED, count + 1
            else:
                out[name] = value
        return out, count

    def query_of(self, query: dict[str, list[str]]) -> tuple[dict[str, list[str]], int]:
        out, count = {}, 0
        for name, values in query.items():
            lower = name.lower()
            whole = is_secret_name(name) or lower in self.names or lower in self.query
            kept = []
            for value in values:
                if value != REDACTED and value and (whole or is_secret_value(value)):
                    kept.append(REDACTED)
                    count += 1
                else:
                    kept.append(value)
            out[name] = kept
        return out, count

    def body_of(self, body: Any, path: tuple[str, ...] = ()) -> tuple[Any, int]:
        """A copy of a JSON (or form) body with secrets replaced, and how many were."""
        if isinstance(body, dict):
            out, count = {}, 0
            for key, value in body.items():
                here = (*path, str(key).lower())
                if value is not None and value != REDACTED and (
                        is_secret_name(str(key)) or here[-1] in self.names or here in self.body):
                    out[key], count = REDACTED, count + 1
                else:
                    out[key], found = self.body_of(value, here)
                    count += found
            return out, count
        if isinstance(body, list):
            items, count = [], 0
            for value in body:
                new, found = self.body_of(value, path)
                items.append(new)
                count += found
            return items, count
        if isinstance(body, str) and body != REDACTED and is_secret_value(body):
            return REDACTED, 1
        return body, 0


def _hash(basis: str) -> str:
    return "s-" + hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def session_key(raw: RawRequest) -> str | None:
    """The request's client/session key, from the unredacted request (see the module docstring)."""
    headers = raw.headers
    if raw.session_hint:
        return _hash("session:" + raw.session_hint)
    cookie = headers.get("cookie", "")
    if cookie:
        pairs = [part.strip() for part in cookie.split(";") if "=" in part]
        chosen = sorted(p for p in pairs if _SESSION_COOKIE.search(p.split("=", 1)[0]))
        return _hash("cookie:" + ("; ".join(chosen) if chosen else cookie))
    for name in ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token",
                 "x-access-token", "x-session-token"):
        if headers.get(name):
            return _hash(f"{name}:{headers[name]}")
    if raw.client:
        return _hash(f"client:{raw.client}|{headers.get('user-agent', '')}")
    if raw.fallback_session:
        return _hash(f"{raw.fallback_session}|{headers.get('user-agent', '')}")
    return None


def group_by_endpoint(requests: Iterable[CapturedRequest]) -> dict[str, list[CapturedRequest]]:
    """Requests by endpoint (``METHOD template``), endpoints sorted, requests in capture order."""
    groups: dict[str, list[CapturedRequest]] = {}
    for request in requests:
        groups.setdefault(request.endpoint, []).append(request)
    return dict(sorted(groups.items()))


def check_samples(groups: dict[str, list[CapturedRequest]], min_samples: int) -> list[str]:
    """One message per endpoint with fewer than ``min_samples`` requests (empty when all have)."""
    return [f"{endpoint}: {len(members)} sample{'' if len(members) == 1 else 's'}, "
            f"at least {min_samples} needed to learn a model"
            for endpoint, members in sorted(groups.items()) if len(members) < min_samples]


def ingest(paths: Sequence[str | Path] | str | Path, *, redact: Sequence[str] = (),
           min_samples: int = 1) -> IngestReport:
    """Read every capture in ``paths`` into one :class:`IngestReport`.

    Raises :class:`TrafficError` for a file that cannot be read at all, for an empty capture
    (no requests in any file), and, when ``min_samples`` > 1, for endpoints with fewer requests
    than that (all of them named: a model of two samples is a model of noise).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    redactor = Redactor.from_list(redact)
    if not paths:
        raise TrafficError("no traffic files given", expected="HAR, JSON Lines or access-log files")
    raws: list[RawRequest] = []
    report = IngestReport()
    for path in paths:
        found, malformed = read_file(path)
        raws += found
        report.malformed += malformed
        report.files.append(str(path))
    if not raws:
        bad = f" ({len(report.malformed)} malformed entries)" if report.malformed else ""
        raise TrafficError(f"no requests in the capture{bad}", source=", ".join(report.files),
                           expected="at least one HTTP request")
    templates = template_all([(raw.method, raw.path) for raw in raws])
    for raw, (template, params) in zip(raws, templates, strict=True):
        session = session_key(raw)
        headers, n_headers = redactor.headers_of(raw.headers)
        query, n_query = redactor.query_of(raw.query)
        body, n_body = (redactor.body_of(raw.body) if raw.body_kind in ("json", "form")
                        else (raw.body, 0))
        report.redacted += n_headers + n_query + n_body
        report.requests.append(CapturedRequest(
            method=raw.method, path=raw.path, template=template, path_params=params, query=query,
            headers=headers, body=body, body_kind=raw.body_kind, status=raw.status,
            latency_ms=raw.latency_ms, session=session, timestamp=raw.timestamp, source=raw.source))
    if min_samples > 1:
        problems = check_samples(group_by_endpoint(report.requests), min_samples)
        if problems:
            raise TrafficError("too few samples to learn a model: " + "; ".join(problems),
                               source=", ".join(report.files),
                               expected=f"at least {min_samples} requests per endpoint")
    return report
