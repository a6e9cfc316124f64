"""What ``--explore`` found, for the console: failing explored variants grouped by case and
failure (one section each, not one per variant), the minimal failing change of each, and a
table of the proposal sources with their yield, and every rule of the ruleset with what it did
(or why it did nothing)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from testfleet.model import Result

__all__ = ["ab_lines", "explored_failures", "failing_line", "label", "print_exploration", "rule_lines"]


def label(params: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + "}"


def explored_failures(final: list[Result], exploration: dict[str, Any] | None,
                      ) -> tuple[list[Result], list[tuple[Result, int, dict[str, Any] | None]]]:
    """(failures of baseline variants, [(first failure of a group, group size, minimised)])."""
    variants = (exploration or {}).get("variants", {})
    if variants:  # only an explored run loads the minimiser
        from testfleet.mutation.minimize_job import failure_identity
    # one group per failure as minimisation tells them apart: two server error texts raised at
    # one line are two groups, each with its own minimal variant
    minimized = {(m.get("nodeid"), m.get("failure") or m.get("fingerprint")): m
                 for m in (exploration or {}).get("minimized", [])}
    plain: list[Result] = []
    groups: dict[tuple[str, str | None], list[Result]] = {}
    for result in final:
        if result.variant_id in variants:
            params = variants[result.variant_id].get("params") or {}
            key = failure_identity(result.fingerprint, result.message, params)
            groups.setdefault((result.nodeid, key), []).append(result)
        else:
            plain.append(result)
    grouped = [(results[0], len(results), minimized.get(key)) for key, results in groups.items()]
    return plain, grouped


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def failing_line(exploration: dict[str, Any]) -> str:
    """How many explored variants failed, and how that adds up to the failures the result line
    counts (which also count failing baseline tests and minimisation checks)."""
    found = len(exploration.get("found", []))
    text = f"{_count(found, 'failing explored variant')}"
    split = exploration.get("failing")
    if split and (split["baseline"] or split["minimize"]):
        total = split["baseline"] + split["explored"] + split["minimize"]
        parts = [f"{split['explored']} explored"]
        if split["minimize"]:
            parts.append(_count(split["minimize"], "minimisation check"))
        if split["baseline"]:
            parts.append(_count(split["baseline"], "baseline test"))
        text += f" (of the {total} failing results: {', '.join(parts)})"
    return text


def ab_lines(ab: dict[str, Any]) -> list[str]:
    """An A/B comparison of two rulesets (plain text): each arm, the replays, the verdict."""
    lines = [f"ruleset {name} ({arm['ruleset']}): {arm['distinct_failures']} distinct failures in "
             f"{arm['executions']} executions ({arm['per_execution']:.3f} per execution)"
             for name, arm in ab["arms"].items()]
    if ab.get("replays"):
        lines.append(f"{_count(ab['replays'], 'replay')} of past failures ran outside both arms")
    lines.append(f"A/B: {ab['verdict']}")
    return lines


def rule_lines(rules: dict[str, dict[str, Any]]) -> list[str]:
    """Every rule of the ruleset: its trigger's evaluations and holds with the values it read,
    its proposals, what they found, and why a rule found nothing."""
    lines = []
    for name, r in rules.items():
        trigger = f"trigger {r['trigger']!r}" if r.get("trigger") else "no trigger"
        held = f"held {r['held']}/{r['evaluated']}"
        if r.get("values_when_held"):
            held += " (" + ", ".join(f"{k} {v}" for k, v in r["values_when_held"].items()) + ")"
        elif r.get("values_seen"):
            held += " (seen " + ", ".join(f"{k} {v}" for k, v in r["values_seen"].items()) + ")"
        text = (f"rule {name}: {trigger} {held}; proposed {r['proposed']}, ran {r['executions']}, "
                f"{_count(r['failures'], 'failure')}, {r['new_failures']} new")
        if r.get("found"):
            text += ": " + "; ".join(r["found"][:3])
        if r.get("why"):
            text += f" - {r['why']}"
        lines.append(text)
    return lines


def print_exploration(console: Console, exploration: dict[str, Any]) -> None:
    variants = exploration.get("variants", {})
    by_origin = exploration.get("by_origin", {})
    console.print(Rule("exploration", characters="=", style="cyan"))
    console.print(f"{exploration['executions']} explored executions of {exploration['cases']} "
                  f"case{'s' if exploration['cases'] != 1 else ''} (budget {exploration['budget']}); "
                  + failing_line(exploration))
    used_up = exploration.get("used_up") or []
    if used_up:
        console.print(f"every point of the space ran before the budget was spent: {', '.join(used_up)}")
    if by_origin:
        table = Table(show_edge=False, box=None, padding=(0, 2))
        for column in ("source", "executions", "failures", "yield"):
            table.add_column(column, justify="left" if column == "source" else "right")
        for origin, counts in by_origin.items():
            n, f = counts["executions"], counts["failures"]
            table.add_row(origin, str(n), str(f), f"{f / n:.0%}" if n else "-")
        console.print(table)
    for line in rule_lines(exploration.get("rules", {})):
        console.print(escape(line), soft_wrap=True)
    for nodeid, cov in exploration.get("coverage", {}).items():
        if cov:
            console.print(f"pairwise coverage of {escape(nodeid)}: {cov['before']:.0%} (baseline) "
                          f"-> {cov['after']:.0%}")
    ab = exploration.get("ab")
    if ab:
        *arms, verdict = ab_lines(ab)
        for line in arms:
            console.print(escape(line))
        console.print(f"[bold]A/B:[/bold] {escape(verdict.removeprefix('A/B: '))}")
    for item in exploration.get("minimized", []):
        console.print(f"[cyan]MINIMAL[/cyan] {escape(item.get('nodeid') or '')}: "
                      f"{escape(item.get('message', ''))} [dim](variant {item.get('variant_id')}, "
                      f"{item.get('executions', 0)} executions)[/dim]", soft_wrap=True)
    if variants:
        console.print("[dim]replay one: testfleet replay VARIANT · all of them: testfleet analyze last[/dim]")
