"""The tables of ``bench/exploration.py --zoo``: per half, executions until each defect was first
found (median over seeds, found k/n) per method; geometric-mean ratios of the first method to each
other one, overall and per class; issue 16's targets as PASS/FAIL lines; the failure-analysis
score. Returns the JSON lines to publish."""

from __future__ import annotations

import json
from typing import Any

from scoring import Defect, median_of, summarise, targets

SHORT = {"random": "rand", "hypothesis": "hyp", "explore-notel": "notel", "explore": "expl",
         "explore-nospec": "nospec"}


def report(per: dict[str, dict[str, list[int | None]]], defects: list[Defect], budget: int,
           analyses: list[dict[str, Any]], ctx: dict[str, Any]) -> list[str]:
    """Print the tables; the JSON lines to publish."""
    methods = list(per)
    base = methods[0]
    lines: list[str] = []
    summary = summarise(per, defects, budget, base=base)
    for half in ("tuning", "held-out"):
        group = [d for d in defects if d.half == half]
        if not group:
            continue
        print(f"\n== {half} half: executions until first found, median over seeds "
              f"(budget {budget}; '>{budget}' = a miss), found k/n")
        print(f"{'defect':<30}{'class':<8}" + "".join(f"{m:>16}" for m in methods)
              + "".join(f"{SHORT.get(base, base)[:4] + '/' + SHORT.get(m, m)[:5]:>11}" for m in methods[1:]))
        for d in group:
            row = f"{d.id:<30}{d.klass:<8}"
            meds = {}
            for m in methods:
                values = per[m][d.id]
                med = meds[m] = median_of(values, budget)
                text = f">{budget}" if med > budget else f"{med:g}"
                row += f"{text + ' ' + str(sum(v is not None for v in values)) + '/' + str(len(values)):>16}"
                lines.append(json.dumps(ctx | {"method": m, "defect": d.id, "class": d.klass, "half": half,
                                               "median": med, "per_seed": values}))
            for m in methods[1:]:  # n/a: neither found it in any seed
                missed = all(v is None for v in per[base][d.id] + per[m][d.id])
                row += f"{'n/a' if missed else f'{meds[base] / meds[m]:.2f}':>11}"
            print(row)
        print(f"-- {half}: geometric mean of median ratios (lower: {base} finds sooner), over the "
              f"defects either method found (n); found_4of5 = defects {base} found in >= 4 of 5 seeds")
        for srow in (r for r in summary if r["half"] == half):
            cells = "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {'n/a' if v is None else v}"
                              for k, v in srow.items() if k not in ("half", "class"))
            print(f"  {srow['class']:<8} {cells}")
            lines.append(json.dumps(ctx | {"figure": "geomean", **srow}))
        if base != "explore":
            continue
        print(f"-- {half}: issue 16's targets (budget {budget})")
        for t in targets(per, defects, budget, half, base=base):
            verdict = "n/a " if t["ok"] is None else "PASS" if t["ok"] else "FAIL"
            print(f"  {verdict} {t['target']}: {t['value']}")
            lines.append(json.dumps(ctx | {"figure": "target", **t}))
    if analyses:
        scored = [a for a in analyses if a["ranked_first"] is not None]
        first = sum(bool(a["ranked_first"]) for a in scored)
        noise = sum(bool(a["noise_significant"]) for a in analyses)
        env = sum(bool(a["env_significant"]) for a in analyses)
        print(f"\nanalysis (per found defect, its executions as the failures): planted cause ranked "
              f"first in {first}/{len(scored)}; a noise parameter significant in {noise}/{len(analyses)}, "
              f"an environment factor in {env}/{len(analyses)} (targets: >= 90 %, <= 5 %, <= 5 %)")
        for a in analyses:
            lines.append(json.dumps(ctx | {"figure": "analysis", **a}))
    return lines
