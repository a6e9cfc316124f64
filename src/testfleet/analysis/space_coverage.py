"""Coverage of a space by the variants that were run: binning, CCM measures, pictures' data.

Executed points come from a fuzz manifest, a directory of configuration files, or a run in the
store (its variants' parameters, with pass/fail from its results; a run's ``sut.<name>``
parameters are matched to a config space's ``<name>``, and a run sharing no name with the space
is refused rather than counted as all outside). Each value is binned into its
dimension's level (``Space.levels_of``); points with a value outside the space are counted and
left out. The measures are :func:`testfleet.space.coverage.measure`'s; this module adds the
names, level labels and the per-pair detail (runs and failures per value pair) the plots show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from testfleet.errors import UsageError
from testfleet.model import FAILURE_OUTCOMES
from testfleet.space.coverage import CoverageReport, measure, pair_counts, pair_matrix
from testfleet.space.space import Space
from testfleet.store.db import Store


@dataclass
class SpaceCoverage:
    space: Space
    report: CoverageReport
    matrix: np.ndarray
    outside: int                 # executed points with a value outside the space
    failed: np.ndarray | None    # per kept row, when outcomes are known
    rows: np.ndarray             # level indices of the executed points inside the space

    def to_dict(self, gap_limit: int = 100) -> dict[str, Any]:
        labels = [[level.label for level in self.space.levels(n)] for n in self.space.names]
        data = self.report.to_dict(self.space.names, labels, gap_limit=gap_limit)
        data["outside"] = self.outside
        data["failed_rows"] = None if self.failed is None else int(self.failed.sum())
        return data

    def pair_details(self, limit: int = 4) -> list[dict[str, Any]]:
        """Value-by-value detail for the pairs worth a look: where failures concentrate (the
        highest failure rate of any value pair) when outcomes are known, else the pairs with
        the lowest coverage."""
        names, counts_of = self.space.names, self.space.level_counts()
        pairs = sorted((float(self.matrix[a, b]), a, b) for a in range(len(names))
                        for b in range(a + 1, len(names)))
        has_failures = self.failed is not None and bool(self.failed.any())
        if has_failures and len(self.rows) * len(pairs) <= 50_000_000:
            def hottest(pair: tuple[float, int, int]) -> float:
                counts, failed = pair_counts(counts_of, self.rows, pair[1], pair[2],
                                             failed=self.failed)
                return -float(np.max(failed / np.maximum(counts, 1)))
            pairs.sort(key=hottest)
        details = []
        for _, a, b in pairs[:limit]:
            counts, failed = pair_counts(counts_of, self.rows, a, b, failed=self.failed)
            details.append({
                "a": names[a], "b": names[b],
                "a_labels": [level.label for level in self.space.levels(names[a])],
                "b_labels": [level.label for level in self.space.levels(names[b])],
                "counts": counts.tolist(),
                "failed": None if failed is None else failed.tolist()})
        return details


def measure_points(space: Space, points: Sequence[Mapping[str, Any]], strength: int = 2, *,
                   failed: Sequence[bool] | None = None) -> SpaceCoverage:
    rows = space.levels_of(list(points)) if points else \
        np.empty((0, len(space)), dtype=np.int64)
    inside = (rows >= 0).all(axis=1) if len(rows) else np.zeros(0, dtype=bool)
    kept = rows[inside]
    flags = None if failed is None else np.asarray(failed, dtype=bool)[inside]
    t = min(strength, len(space))
    report = measure(space.level_counts(), kept, t, oracle=space.oracle())
    if t == 2:  # the pairs were just measured: only the diagonal (single values) is new
        matrix = np.zeros((len(space), len(space)))
        singles = measure(space.level_counts(), kept, 1, oracle=space.oracle())
        for combo in [*report.combinations, *singles.combinations]:
            a, b = combo.columns[0], combo.columns[-1]
            matrix[a, b] = matrix[b, a] = combo.fraction
    else:
        matrix = pair_matrix(space.level_counts(), kept, oracle=space.oracle())
    return SpaceCoverage(space, report, matrix, int((~inside).sum()), flags, kept)


def points_of_run(store: Store, ref: str, space: Space | None = None
                  ) -> tuple[list[dict[str, Any]], list[bool]]:
    """Each final result's variant parameters in a run, and whether it failed. Given the
    ``space``, names are matched to it (see :func:`match_names`)."""
    run = store.get_run(ref)
    results = store.results(run.run_id, final_only=True)
    params = store.variant_params(sorted({r.variant_id for r in results}))
    points = [params.get(r.variant_id, {}) for r in results]
    if space is not None:
        points = match_names(space, points, source=f"run {run.run_id}")
    return points, [r.outcome in FAILURE_OUTCOMES for r in results]


def match_names(space: Space, points: list[dict[str, Any]], *,
                source: str) -> list[dict[str, Any]]:
    """``points`` with their names made the space's. A run records a SUT configuration's
    parameters as ``sut.<name>`` while the config's own space names them ``<name>``: the
    prefix (``sut.``, or any first part) that makes the most names the space's is stripped,
    or added. UsageError saying what the run and the space name when no name matches."""
    wanted = set(space.names)
    seen = {key for point in points for key in point}
    if not seen or seen & wanted == seen:
        return points
    prefixes = {key.split(".", 1)[0] + "." for key in seen if "." in key} | {"sut."}
    best, best_hits = None, len(seen & wanted)
    for prefix in sorted(prefixes):
        stripped = len({k.removeprefix(prefix) for k in seen if k.startswith(prefix)} & wanted)
        added = len({prefix + k for k in seen} & wanted)
        for hits, how in ((stripped, ("strip", prefix)), (added, ("add", prefix))):
            if hits > best_hits:
                best, best_hits = how, hits
    if best_hits == 0:
        ours = ", ".join(sorted(seen)[:6]) + (f" (and {len(seen) - 6} more)" if len(seen) > 6
                                              else "")
        theirs = ", ".join(space.names[:6]) + (f" (and {len(space.names) - 6} more)"
                                               if len(space.names) > 6 else "")
        raise UsageError(f"none of the parameters of {source} ({ours}) is a parameter of the "
                         f"space ({theirs})", source=space.source, expected="the space the run "
                         "explored, e.g. the SUT's config_space for its sut.* parameters")
    if best is None:
        return points
    kind, prefix = best
    if kind == "strip":
        return [{k.removeprefix(prefix): v for k, v in point.items() if k.startswith(prefix)}
                for point in points]
    return [{prefix + k: v for k, v in point.items()} for point in points]


def recorded_spaces(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The spaces the run's explorable cases declared, as the run recorded them (``space``
    events): ``[{"case_id", "nodeid", "space": <declaration>}]`` in the order they were seen."""
    from testfleet.store.telemetry import TelemetryStore

    seen: dict[str, dict[str, Any]] = {}
    for event in TelemetryStore(store).events(run_id, kinds=("space",)):
        if event.get("case_id") and isinstance(event.get("space"), dict):
            seen.setdefault(str(event["case_id"]), {"case_id": event["case_id"], "nodeid": event.get("nodeid"),
                                                    "space": event["space"]})
    return list(seen.values())


def case_coverage(store: Store, run_id: str, case_id: str, declared: dict[str, Any], strength: int = 2
                  ) -> tuple[Space, SpaceCoverage]:
    """t-way coverage of one explorable case's recorded space by that case's final executions."""
    from testfleet.space.declare import space_from_dict

    space = space_from_dict(declared, source=case_id)
    results = [r for r in store.results(run_id, final_only=True) if r.case_id == case_id]
    params = store.variant_params(sorted({r.variant_id for r in results}))
    points = [{k: v for k, v in params.get(r.variant_id, {}).items() if k in space.dimensions} for r in results]
    return space, measure_points(space, points, strength, failed=[r.outcome in FAILURE_OUTCOMES for r in results])
