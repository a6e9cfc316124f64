"""The zoo's scorer: the only reader of ``ground_truth.yaml``.

- :func:`first_finds`: executions until each defect is first found in one run's executions (the
  index, within the defect's case, of the first execution whose failure text carries the
  defect's marker; over all the system's executions for a ``case: "*"`` defect).
- :func:`summarise`: per defect the median over seeds (a miss counts as budget + 1, so a median
  that is a miss is a lower bound) and found-in-k-of-n; per half and per class the geometric
  mean of the ratio method / peer of those medians, over the defects at least one of the two
  found.
- :func:`score_analysis`: whether failure analysis, run on one explore run with only this
  defect's executions counted as failures, ranks a planted cause first, and which other
  parameters and which environment factors it calls significant.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ZOO = Path(__file__).resolve().parent
TRUTH = ZOO / "ground_truth.yaml"


@dataclass(frozen=True)
class Defect:
    id: str
    klass: str
    system: str
    case: str
    cause: tuple[str, ...]
    half: str

    @property
    def marker(self) -> str:
        return f"ZOO-DEFECT:{self.id}"


@dataclass(frozen=True)
class System:
    name: str
    kind: str
    half: str
    cases: tuple[str, ...]

    @property
    def path(self) -> Path:
        return ZOO / self.name


def load_truth(path: Path = TRUTH) -> tuple[dict[str, System], list[Defect]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    systems = {name: System(name, s["kind"], s["half"], tuple(s["cases"]))
               for name, s in data["systems"].items()}
    defects = [Defect(d["id"], d["class"], d["system"], d["case"], tuple(d.get("cause") or ()),
                      systems[d["system"]].half) for d in data["defects"]]
    return systems, defects


def stop_sets(system: System, defects: Iterable[Defect]) -> dict[str, list[str]]:
    """Per case, the markers after which its executions no longer count (the bench stops it)."""
    mine = [d for d in defects if d.system == system.name]
    anywhere = [d.id for d in mine if d.case == "*"]
    return {case: sorted({d.id for d in mine if d.case == case} | set(anywhere)) for case in system.cases}


def first_finds(rows: Sequence[Mapping[str, Any]], defects: Iterable[Defect]) -> dict[str, int | None]:
    """``rows``: one system's executions in order, each with ``case`` and ``markers`` (ids)."""
    found: dict[str, int | None] = {}
    for defect in defects:
        found[defect.id] = None
        seen = 0
        for row in rows:
            if defect.case != "*" and row["case"] != defect.case:
                continue
            seen += 1
            if defect.id in row["markers"]:
                found[defect.id] = seen
                break
    return found


def median_of(values: Sequence[int | None], budget: int) -> float:
    return float(statistics.median([budget + 1 if v is None else v for v in values]))


def geomean(values: Sequence[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def ratios(per: Mapping[str, Mapping[str, Sequence[int | None]]], defects: Sequence[Defect],
           method: str, peer: str, budget: int) -> dict[str, float]:
    """Per defect: median(method) / median(peer), for defects at least one of them found."""
    out: dict[str, float] = {}
    for d in defects:
        a, b = per[method][d.id], per[peer][d.id]
        if all(v is None for v in a) and all(v is None for v in b):
            continue
        out[d.id] = median_of(a, budget) / median_of(b, budget)
    return out


def summarise(per: Mapping[str, Mapping[str, Sequence[int | None]]], defects: Sequence[Defect],
              budget: int, base: str = "explore") -> list[dict[str, Any]]:
    """Geometric-mean ratios base / peer, per half, overall and per class."""
    rows: list[dict[str, Any]] = []
    peers = [m for m in per if m != base]
    for half in ("tuning", "held-out"):
        group = [d for d in defects if d.half == half]
        if not group:
            continue
        for klass in [None, *sorted({d.klass for d in group})]:
            chosen = [d for d in group if klass is None or d.klass == klass]
            row: dict[str, Any] = {"half": half, "class": klass or "all", "defects": len(chosen)}
            for peer in peers:
                r = ratios(per, chosen, base, peer, budget)
                row[f"{base}/{peer}"] = geomean(list(r.values()))
                row[f"{base}/{peer}_n"] = len(r)
            if base in per:
                runs = [len(per[base][d.id]) for d in chosen]
                row["found_4of5"] = sum(sum(v is not None for v in per[base][d.id]) >= min(4, n)
                                        for d, n in zip(chosen, runs))
            rows.append(row)
    return rows


# -- failure analysis -------------------------------------------------------------------------
def score_analysis(frame: Any, cases: Sequence[str], texts: Sequence[str], defect: Defect,
                   fdr: float = 0.05) -> dict[str, Any]:
    """Analyse the executions of ``defect``'s case(s), failed = its marker in the failure text
    (executions failing for another reason are left out). ``frame`` is
    :func:`testfleet.analysis.dataset.load_frame` of the run; ``cases`` and ``texts`` its rows'
    case and failure text, in the same order."""
    import numpy as np

    from testfleet.analysis.correlation import analyze

    has = np.array([defect.marker in (t or "") for t in texts], dtype=bool)
    in_case = np.array([defect.case == "*" or c == defect.case for c in cases], dtype=bool)
    other = np.asarray(frame.failed, dtype=bool) & ~has
    keep = in_case & ~other
    # the subset keeps each execution's variant and origin: analysis draws significance from
    # the design executions and tests the environment within variants, as `testfleet analyze` does
    sub = frame.subset(keep)
    sub.failed = has[keep]
    result = analyze(sub, fdr=fdr)
    tested = sorted((i for i in result.impacts if i.p_value is not None and i.source == "param"),
                    key=lambda i: (i.q_value, i.p_value))
    top = tested[0].column if tested and tested[0].significant else None
    significant = [i for i in result.impacts if i.significant]
    return {"defect": defect.id, "executions": int(keep.sum()), "failures": int(has[keep].sum()),
            "cause": list(defect.cause), "top": top,
            "ranked_first": (top in defect.cause) if defect.cause and has[keep].any() else None,
            "noise_significant": [i.column for i in significant if i.source == "param"
                                  and i.column not in defect.cause],
            "env_significant": [i.column for i in significant if i.source != "param"],
            "not_enough_data": result.not_enough_data}


# -- the targets ------------------------------------------------------------------------
#: the class whose defects hang on load or latency, which only telemetry can see
TELEMETRY_CLASSES = ("load",)


def targets(per: Mapping[str, Mapping[str, Sequence[int | None]]], defects: Sequence[Defect],
            budget: int, half: str, base: str = "explore") -> list[dict[str, Any]]:
    """Issue 16's targets for ``half``, each {target, value, ok} (ok None: not measurable with
    the methods or defects at hand). Ratios as in :func:`summarise`."""
    group = [d for d in defects if d.half == half]
    out: list[dict[str, Any]] = []
    if not group or base not in per:
        return out

    def check(target: str, value: str, ok: bool | None) -> None:
        out.append({"half": half, "target": target, "value": value, "ok": ok})

    runs = max(len(per[base][d.id]) for d in group)
    need = math.ceil(0.8 * runs)  # 4 of 5 seeds
    often = [d for d in group if sum(v is not None for v in per[base][d.id]) >= need]
    missed = [d.id for d in group if d not in often]
    check(f"every defect found in >= {need}/{runs} seeds", f"{len(often)}/{len(group)}"
          + (f" (not: {', '.join(missed)})" if missed else ""), not missed)
    for peer, bound in (("random", 0.33), ("hypothesis", 1.0)):
        if peer in per:
            g = geomean(list(ratios(per, group, base, peer, budget).values()))
            check(f"geomean {base}/{peer} <= {bound:g}", "n/a" if g is None else f"{g:.2f}",
                  None if g is None else g <= bound)
    if "random" in per:
        by_class = {k: geomean(list(ratios(per, [d for d in group if d.klass == k], base, "random",
                                           budget).values())) for k in sorted({d.klass for d in group})}
        worse = {k: g for k, g in by_class.items() if g is not None and g > 1.2}
        worst = max(((g, k) for k, g in by_class.items() if g is not None), default=None)
        check(f"no class {base}/random > 1.2", ", ".join(f"{k} {g:.2f}" for k, g in worse.items())
              or (f"worst {worst[1]} {worst[0]:.2f}" if worst else "n/a"),
              None if worst is None else not worse)
    notel = f"{base}-notel"
    if notel in per:
        dependent = [d for d in group if d.klass in TELEMETRY_CLASSES]
        g = geomean(list(ratios(per, dependent, base, notel, budget).values()))
        check(f"telemetry-dependent ({'/'.join(TELEMETRY_CLASSES)}) {base}/{notel} <= 0.33 (3x sooner)",
              "n/a" if g is None else f"{g:.2f} over {len(dependent)}", None if g is None else g <= 1 / 3)
    return out
