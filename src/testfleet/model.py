"""The vocabulary of testfleet (see DESIGN.md) as pydantic v2 models. No I/O here.

A *case* is one test as written (a pytest item). A *variant* is a case with concrete parameter
values; plain pytest items run as their ``baseline`` variant with no parameters. A *result* is one
execution (one attempt) of a variant on one worker. A *run* is one invocation of ``testfleet run``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def stable_id(*parts: Any) -> str:
    """A short, stable hex id of JSON-serialisable parts: equal inputs give equal ids, always."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Outcome(StrEnum):
    passed = "passed"
    failed = "failed"
    error = "error"
    skipped = "skipped"
    xfailed = "xfailed"
    xpassed = "xpassed"
    timeout = "timeout"
    crashed = "crashed"

    @property
    def is_failure(self) -> bool:
        """Outcomes that make a run fail (pytest exit code 1) and that ``--reruns`` retries."""
        return self in FAILURE_OUTCOMES


FAILURE_OUTCOMES = frozenset({Outcome.failed, Outcome.error, Outcome.timeout, Outcome.crashed})


class Case(BaseModel):
    """One test as written. For pytest, ``nodeid`` identifies it and ``case_id`` hashes the nodeid."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    nodeid: str
    kind: str = "pytest"
    file: str = ""
    line: int | None = None
    name: str = ""
    markers: list[str] = Field(default_factory=list)

    @classmethod
    def from_nodeid(cls, nodeid: str, **fields: Any) -> Case:
        return cls(case_id=stable_id("case", nodeid), nodeid=nodeid, **fields)


class Variant(BaseModel):
    """A case with concrete parameters. Its id hashes (case, params): the same variant, the same id."""

    model_config = ConfigDict(frozen=True)

    variant_id: str
    case_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    origin: str = "baseline"
    parent_id: str | None = None

    @classmethod
    def of(cls, case: Case, params: dict[str, Any] | None = None, origin: str = "baseline",
           parent_id: str | None = None) -> Variant:
        params = params or {}
        return cls(variant_id=stable_id("variant", case.case_id, params), case_id=case.case_id,
                   params=params, origin=origin, parent_id=parent_id)


class Result(BaseModel):
    """One execution (attempt) of a variant on one worker.

    ``categories`` are the pytest report categories of every phase report of the item, exactly as
    pytest's terminal counts them (``["failed", "error"]`` for a call failure plus a teardown
    error), so counts match plain pytest; ``outcome`` is the single word for the item.
    """

    run_id: str
    variant_id: str
    case_id: str
    nodeid: str
    attempt: int = 1
    worker: str = ""
    outcome: Outcome
    duration: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    when: str | None = None
    message: str = ""
    longrepr: str = ""
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    categories: list[str] = Field(default_factory=list)
    fingerprint: str | None = None
    file: str = ""
    line: int | None = None
    keywords: list[str] = Field(default_factory=list)
    phases: dict[str, dict[str, Any]] = Field(default_factory=dict)
    flaky: bool = False
    final: bool = True
    #: per metric, its summary while this execution ran: mean, max, p95, delta, count
    telemetry: dict[str, dict[str, float]] = Field(default_factory=dict)


class RunStatus(StrEnum):
    running = "running"
    finished = "finished"
    interrupted = "interrupted"
    error = "error"


class Run(BaseModel):
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = RunStatus.running
    exit_code: int | None = None
    argv: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    rootdir: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    git_sha: str | None = None
    backend: str = "local"
    workers: int = 1
    collected: int = 0
    deselected: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    flaky: int = 0
    duration: float = 0.0
