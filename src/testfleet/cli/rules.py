"""``testfleet rules validate|show|schema``: mutation rulesets from the command line.

Exit codes (DESIGN.md): 0 done, 2 for bad input (any invalid ruleset).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError
from testfleet.reporting.consoles import make_console

app = typer.Typer(help="Mutation rulesets: check them, list their rules, print their JSON Schema.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2

FileArg = Annotated[str, typer.Argument(help="A ruleset file (YAML, or JSON with a .json suffix).")]


@app.command("validate")
def validate_command(
    paths: Annotated[list[str], typer.Argument(help="Ruleset files (YAML, or JSON with a .json suffix).")],
) -> None:
    """Check rulesets against the schema and for sound values and triggers."""
    from testfleet.mutation.rules import load_ruleset

    code = 0
    for path in paths:
        try:
            ruleset = load_ruleset(path)
        except TestfleetError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            code = BAD_INPUT
            continue
        count = len(ruleset)
        typer.echo(f"ok: {path} ({count} rule{'' if count == 1 else 's'}, "
                   f"version {ruleset.version})")
    raise typer.Exit(code)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _what(rule: Any) -> str:
    """The values a rule works with, in a few words."""
    if rule.variation_type == "set":
        return ", ".join(json.dumps(v, default=str) for v in rule.values or ())
    parts = []
    if rule.min_value is not None or rule.max_value is not None:
        lo = "" if rule.min_value is None else _number(rule.min_value)
        hi = "" if rule.max_value is None else _number(rule.max_value)
        parts.append(f"{lo}..{hi}")
    if rule.step_size is not None:
        parts.append(f"step {_number(rule.step_size)}")
    if rule.factor is not None:
        parts.append(f"x{_number(rule.factor)}")
    if rule.amount is not None:
        parts.append(f"±{_number(rule.amount)}{'%' if rule.relative_amount else ''}")
    return " ".join(parts) or "-"


@app.command("show")
def show_command(path: FileArg) -> None:
    """List a ruleset's rules: target, variation, values, trigger, priority, cases."""
    from testfleet.mutation.rules import load_ruleset

    try:
        ruleset = load_ruleset(path)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        raise typer.Exit(BAD_INPUT) from None
    console = make_console(min_width=140)
    table = Table("name", "target", "type", "range/values", "trigger", "priority", "applies_to",
                  box=None, header_style="bold")
    for rule in ruleset:
        name = escape(rule.mutation_name) + ("" if rule.enabled else " (disabled)")
        table.add_row(name, escape(rule.target_parameter), rule.variation_type,
                      escape(_what(rule)), escape(rule.trigger_condition or "always"),
                      _number(rule.priority),
                      escape(", ".join(rule.applies_to) or "all cases"))
    title = f"{ruleset.name} " if ruleset.name else ""
    console.print(f"{escape(title)}{escape(path)}: {len(ruleset)} rules, version "
                  f"{escape(ruleset.version)}")
    console.print(table)
    raise typer.Exit(0)


@app.command("schema")
def schema_command() -> None:
    """Print the published JSON Schema (draft 2020-12) of a ruleset file."""
    from testfleet.mutation.rules import schema

    typer.echo(json.dumps(schema(), indent=2))
    raise typer.Exit(0)
