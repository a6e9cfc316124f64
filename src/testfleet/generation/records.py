"""The one shape every part of ``generation`` shares: a captured (or generated) HTTP request.

Ingest (``traffic.py``) turns HAR entries, JSON Lines and access-log lines into
:class:`CapturedRequest` records, secrets already redacted and the path already templated
(``/users/123`` -> ``/users/{id}``, with ``path_params={"id": "123"}``); the learners
(``infer.py``, ``statistical.py``, ``llm.py``) read them grouped by :attr:`endpoint`; the
generators produce the same records (``source="generated:<model>"``), so validation, planning
and drift treat production and generated requests alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["REDACTED", "CapturedRequest", "IngestReport"]

REDACTED = "<redacted>"


@dataclass
class CapturedRequest:
    method: str  # upper case
    path: str  # as sent, without the query string
    template: str  # the path with ids replaced: /items/{id}
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)  # repeated keys keep every value
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, secrets redacted
    body: Any = None  # parsed JSON (dict/list/scalar), or text, or None
    body_kind: str = "none"  # none | json | text | form
    status: int | None = None  # the response status, when the capture has it
    latency_ms: float | None = None
    session: str | None = None  # client/session key (cookie hash, IP+UA...), for call sequences
    timestamp: float | None = None  # epoch seconds
    source: str = ""  # "file:line" of the capture, or "generated:<model>"

    @property
    def endpoint(self) -> str:
        """``METHOD template``: the unit a model is learned for."""
        return f"{self.method} {self.template}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapturedRequest:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class IngestReport:
    """What an ingest kept and what it could not read (with file and line), never silently."""

    requests: list[CapturedRequest] = field(default_factory=list)
    malformed: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, reason)
    redacted: int = 0  # values replaced by REDACTED
    files: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> IngestReport:
        return IngestReport(self.requests + other.requests, self.malformed + other.malformed,
                            self.redacted + other.redacted, self.files + other.files)
