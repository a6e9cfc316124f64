"""A failure analysis on the terminal and in Markdown, from its JSON form (``cli/analyze.py``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from testfleet.analysis.display import abbreviate, abbreviate_params


def _p(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def design_line(analysis: dict[str, Any]) -> str:
    """Where the tests come from, when guided executions were set aside ("" when none were)."""
    design = analysis.get("design") or {}
    if not design.get("guided_executions"):
        return ""
    guided = ", ".join(f"{k} {f}/{n}" for k, (n, f) in design["guided_sources"].items())
    return (f"tests drawn from the {design['executions']:,} design executions "
            f"({design['failures']:,} failed); {design['guided_executions']:,} guided executions "
            f"({design['guided_failures']:,} failed: {guided}) give hypotheses only")


def impact_rows(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter: the figures a reader compares."""
    rows = []
    for item in analysis["impacts"]:
        worst = max((v for v in item["values"] if v.get("count")), default=None,
                    key=lambda v: (v["rate"], v["count"]))
        rows.append({
            "parameter": item["column"], "source": item["source"], "kind": item["kind"],
            "tested": item["status"] == "tested", "status": item["status"],
            "test": item["test"] or item["status"], "p": item["p_value"], "q": item["q_value"],
            "effect": item["effect"], "effect_name": item["effect_name"] or "",
            "significant": item["significant"], "note": item.get("note") or "",
            "worst": None if worst is None else
            f"{worst['value']}: {worst['rate']:.0%} of {worst['count']}"})
    return rows


def interaction_rows(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"text": i["text"], "parameters": [c.get("column") for c in i["conditions"]],
             "rate": i["rate"], "count": i["count"], "lift": i["lift"], "q": i["q_value"]}
            for i in analysis["interactions"]]


def print_analysis(console: Console, data: dict[str, Any]) -> None:
    analysis = data["analysis"]
    console.print(f"[bold]{analysis['executions']} executions, {analysis['failures']} failed"
                  f"[/] ({analysis['failure_rate']:.1%}) in run(s) {', '.join(data['runs'])}; "
                  f"false discovery rate {analysis['fdr']:.0%}")
    if design_line(analysis):
        console.print(escape(design_line(analysis)))
    if analysis["not_enough_data"]:
        console.print(f"[yellow]not enough data:[/] {escape(analysis['not_enough_data'])}")
    rows = impact_rows(analysis)
    if rows and not analysis["not_enough_data"]:
        table = Table("parameter", "test", "p", "q", "effect", "highest failure rate", "",
                      box=None, header_style="bold", title="parameter impact")
        for r in rows:
            effect = "-" if r["effect"] is None else f"{r['effect_name']} {r['effect']:.2f}"
            mark = "[bold red]significant[/]" if r["significant"] else escape(r["note"] or "")
            if r["significant"] and r["source"] == "env" and r["note"]:
                mark += " " + escape(r["note"])
            table.add_row(escape(r["parameter"]) + (" (env)" if r["source"] == "env" else ""),
                          escape(str(r["test"])), _p(r["p"]), _p(r["q"]), effect,
                          escape(r["worst"] or "-"), mark)
        console.print(table)
    if analysis["rules"]:
        console.print("[bold]rules[/]")
        for rule in analysis["rules"]:
            console.print(f"  {escape(rule['text'])}")
    inters = interaction_rows(analysis)
    if inters:
        console.print(f"[bold]interactions[/] ({len(inters)} significant)")
        for i in inters[:8]:
            console.print(f"  {escape(i['text'])}: {i['rate']:.0%} of {i['count']} "
                          f"(lift {i['lift']:.1f}, q {_p(i['q'])})")
    if analysis.get("hypotheses"):
        console.print("[bold]hypotheses[/] (from guided executions, chosen near failures: not "
                      "tests; confirm with --confirm)")
        for h in analysis["hypotheses"]:
            console.print(f"  {escape(h['text'])}")
    for note in analysis.get("sparse_interactions", []):
        console.print(f"[dim]too few executions to test:[/] {escape(note['text'])} failed "
                      f"{note['failures']} of {note['count']} (its values alone at most "
                      f"{note['component_rate']:.0%})")
    for outcome, ranked in analysis["sensitivity"].items():
        top = [s for s in ranked if s["significant"]][:5]
        if top:
            console.print(f"[bold]{escape(outcome)} depends on[/] " + ", ".join(
                f"{escape(s['column'])} ({s['effect_name']} {s['effect']:.2f})" for s in top))
    clusters = data["clusters"]
    if clusters:
        table = Table("failure", "count", "tests", "first seen", "last seen", "where", box=None,
                      header_style="bold", title="failure clusters")
        for c in clusters[:15]:
            table.add_row(escape(abbreviate(f"{c['exception']}: {c['message']}", 90)), str(c["count"]),
                          str(len(c["tests"])), str(c["first_seen"] or "-")[:19],
                          str(c["last_seen"] or "-")[:19], escape(c["environment"]))
        console.print(table)
    if data["flaky"]:
        console.print("[bold]flaky[/]: " + ", ".join(
            f"{escape(f['nodeid'])} ({f['score']:.0%}, {f['low']:.0%}–{f['high']:.0%})"
            for f in data["flaky"][:5]))
    from testfleet.execution.replication import verdict_lines

    for line in verdict_lines(data.get("replication") or []):  # failures replayed during the runs
        console.print(escape(line), highlight=False)
    if data.get("next_asked") and not data["next"]:
        console.print("next variants: every one-factor change of the suspects has already run")
    if data["next"]:
        console.print("[bold]next variants to run[/]")
        for p in data["next"]:
            console.print(f"  {escape(p['reason'])}: {escape(abbreviate_params(p['params']))}")
    if data.get("confirmed"):
        console.print("[bold]confirmation[/] (each arm run again on the fleet, in a shuffled "
                      "order)")
        for c in data["confirmed"]:
            console.print(f"  [bold]{c['verdict']}[/]: {escape(c['text'])}")


def to_markdown(data: dict[str, Any]) -> str:
    analysis = data["analysis"]
    lines = [f"## Failure analysis — {', '.join(data['runs'])}", "",
             f"**{analysis['executions']} executions, {analysis['failures']} failed** "
             f"({analysis['failure_rate']:.1%}); false discovery rate {analysis['fdr']:.0%}.", ""]
    if design_line(analysis):
        lines += [design_line(analysis), ""]
    if analysis["not_enough_data"]:
        lines += [f"> Not enough data: {analysis['not_enough_data']}", ""]
    else:
        lines += ["| parameter | test | q | effect | highest failure rate | |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in impact_rows(analysis):
            effect = "-" if r["effect"] is None else f"{r['effect_name']} {r['effect']:.2f}"
            lines.append(f"| `{r['parameter']}` | {r['test']} | {_p(r['q'])} | {effect} | "
                         f"{r['worst'] or '-'} | {'**significant**' if r['significant'] else ''} |")
        lines.append("")
    if analysis["rules"]:
        lines += ["### Rules", ""] + [f"- {rule['text']}" for rule in analysis["rules"]] + [""]
    if analysis.get("hypotheses"):
        lines += ["### Hypotheses (guided executions: not tests)", ""] + [
            f"- {h['text']}" for h in analysis["hypotheses"]] + [""]
    if analysis.get("sparse_interactions"):
        lines += ["### Too few executions to test", ""] + [
            f"- {i['text']}: {i['failures']} of {i['count']} failed" for i in
            analysis["sparse_interactions"]] + [""]
    if data["clusters"]:
        lines += ["### Failure clusters", "", "| failure | count | tests | where |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| `{c['exception']}: {c['message'][:80]}` | {c['count']} | "
                  f"{len(c['tests'])} | {c['environment']} |" for c in data["clusters"][:15]]
        lines.append("")
    if data["flaky"]:
        lines += ["### Flaky tests", ""] + [
            f"- `{f['nodeid']}`: {f['score']:.0%} ({f['low']:.0%}–{f['high']:.0%}), "
            f"{f['evidence']}" for f in data["flaky"]] + [""]
    if data.get("replication"):
        lines += ["### Replicated failures", ""] + [
            f"- **{e['class']}** `{e['nodeid']}`: {e['message']}" for e in data["replication"]] + [""]
    if data["next"]:
        lines += ["### Next variants", ""] + [f"- {p['reason']}: `{abbreviate_params(p['params'])}`"
                                              for p in data["next"]] + [""]
    if data.get("confirmed"):
        lines += ["### Confirmation", ""] + [f"- **{c['verdict']}**: {c['text']}"
                                             for c in data["confirmed"]] + [""]
    return "\n".join(lines)


def to_json(found: dict[str, Any]) -> dict[str, Any]:
    """An analysis (``testfleet analyze``'s findings: runs, analysis, clusters, flaky, next...) as
    its JSON document, the one the CLI, the API and the HTML report show."""
    return {"runs": found["runs"], "analysis": found["analysis"].to_dict(),
            "clusters": [c.to_dict() for c in found["clusters"]],
            "flaky": [f.to_dict() for f in found["flaky"]],
            "next": [p.to_dict() for p in found["next"]], "next_asked": found["next_asked"],
            "confirmed": [c.to_dict() for c in found.get("confirmed", [])],
            "replication": found.get("replication", [])}


def picture_subjects(data: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """The parameters worth a bar chart (significant first, at most 4) and the top pair."""
    impacts = impact_rows(data["analysis"])
    params = [i["parameter"] for i in impacts if i["significant"]][:4] or \
        [i["parameter"] for i in impacts if i["tested"]][:2]
    pairs = []
    for inter in interaction_rows(data["analysis"]):
        names = inter["parameters"]
        if len(names) >= 2:
            pairs.append((names[0], names[1]))
            break
    return params, pairs
