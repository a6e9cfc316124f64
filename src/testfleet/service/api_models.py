"""Response models of the read API (``api_read``): typed, so that ``/openapi.json`` says exactly
what each endpoint answers and a client (or Schemathesis) can check it.

Stored rows and a live run's events share one model per thing: the fields a live run's events do
not carry (a result's stdout, a run's seed...) are optional and absent (``null``) there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

__all__ = ["AnalysisOut", "CoverageOut", "DiffEntry", "OriginCount", "Page", "ResultOut",
           "RunDiffOut", "RunOut", "SeriesPoint", "SnapshotOut", "SpecOut"]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: pass ``next`` as ``?cursor=`` for the following page (null: the last)."""

    items: list[T]
    next: str | None = Field(description="Opaque cursor of the next page; null on the last page.")


class RunOut(BaseModel):
    run_id: str
    live: bool = Field(description="True: answered from the run's live events (not in the store yet).")
    status: str = Field(description="queued, running, finished, interrupted, error or failed.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    argv: list[str] = []
    paths: list[str] = []
    rootdir: str | None = None
    seed: int | None = None
    git_sha: str | None = None
    backend: str | None = None
    workers: int | None = None
    collected: int | None = None
    deselected: int | None = None
    counts: dict[str, int] = {}
    flaky: int | None = None
    duration: float | None = None
    settings: dict[str, Any] | None = None


class ResultOut(BaseModel):
    """One execution (attempt) of a test in a run."""

    nodeid: str
    outcome: str
    attempt: int
    final: bool
    flaky: bool
    worker: str
    duration: float
    message: str
    longrepr: str | None = None
    run_id: str | None = None
    variant_id: str | None = None
    case_id: str | None = None
    origin: str | None = Field(default=None, description="baseline, or the exploration source of the variant.")
    params: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    when: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    log: str | None = None
    categories: list[str] | None = None
    fingerprint: str | None = None
    file: str | None = None
    line: int | None = None
    keywords: list[str] | None = None
    phases: dict[str, dict[str, Any]] | None = None
    telemetry: dict[str, dict[str, float | None]] | None = None
    seq: int | None = Field(default=None, description="The live event's sequence number (live runs only).")
    done: int | None = None
    total: int | None = None


class SeriesPoint(BaseModel):
    """One telemetry sample: ``metric`` of ``worker`` was ``value`` at ``t`` (epoch seconds)."""

    worker: str
    t: float
    metric: str
    value: float | None = Field(description="null for a sample that is not a finite number.")


class OriginCount(BaseModel):
    origin: str = Field(description="baseline, or the source that proposed the variants.")
    variants: int
    executions: int
    failures: int


class CaseCoverageOut(BaseModel):
    case_id: str
    nodeid: str | None = None
    coverage: dict[str, Any] = Field(
        description="The case's t-way coverage of the space it declared (as recorded by the run): measures, "
                    "combinations, gaps, the pairwise matrix over `names` and `pair_details`.")


class CoverageOut(BaseModel):
    run_id: str
    by_origin: list[OriginCount] = Field(description="Final executions of the run by variant source.")
    cases: list[CaseCoverageOut] = Field(
        default_factory=list, description="Each explorable case's coverage of the space it declared.")
    space: str | None = Field(default=None,
                              description="The space file measured against (relative to the run's root).")
    coverage: dict[str, Any] | None = Field(
        default=None, description="`testfleet space coverage --run --json` of the space (measures, combinations, "
                          "gaps), with the pairwise matrix over `names` and `pair_details`; null without ?space=.")


class AnalysisOut(BaseModel):
    """What ``testfleet analyze --json`` writes."""

    runs: list[str]
    analysis: dict[str, Any]
    clusters: list[dict[str, Any]]
    flaky: list[dict[str, Any]]
    next: list[dict[str, Any]]
    next_asked: bool
    confirmed: list[dict[str, Any]]
    replication: list[dict[str, Any]] = Field(default_factory=list, description="what replaying each "
                                              "failure at once concluded (the run's replication verdicts)")


class DiffEntry(BaseModel):
    variant_id: str
    nodeid: str
    outcome: str = Field(description="The final outcome in the run (a failure first when replicated).")
    base_outcome: str | None = Field(description="The final outcome in the base run; null: not run there.")
    duration: float
    base_duration: float | None
    message: str = ""


class RunDiffOut(BaseModel):
    run_id: str
    base: str
    new_failures: list[DiffEntry] = Field(description="Failing now; passed in the base run, or not run there.")
    fixed: list[DiffEntry] = Field(description="Failed in the base run, passes now.")
    slower: list[DiffEntry] = Field(description="Passed in both, now at least min_ratio times and min_delta s "
                                                "slower; slowest ratio first.")


class SnapshotOut(BaseModel):
    snapshot_id: str
    created_at: datetime
    roots: list[str]
    files: int
    size: int
    tags: list[str]
    meta: dict[str, str]


class SpecOut(BaseModel):
    spec_id: str
    version: str
    digest: str
    source: str | None
    first_seen: datetime
    body: Any
