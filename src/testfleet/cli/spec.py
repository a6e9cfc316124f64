"""``testfleet spec check|lint|history``: behaviour specifications against stored results.

Exit codes (DESIGN.md): 0 every spec holds (or is untested), 1 a spec is violated (or, with
``--strict``, untested) / lint found problems, 2 bad input. A failed ``check`` (a CI gate) also
says ``spec gate failed: <counts>; exit 1`` on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from testfleet.errors import StoreError, TestfleetError
from testfleet.reporting.consoles import make_console

if TYPE_CHECKING:
    from testfleet.store.db import Store

app = typer.Typer(help="Behaviour specifications: check them against a run, lint them.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2
NOT_MET = 1
SpecArg = Annotated[str, typer.Argument(help="A YAML or JSON file of specs.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="DuckDB file (default: from settings).")]


def _error(exc: TestfleetError) -> int:
    sys.stderr.write(f"ERROR: {exc}\n")
    return BAD_INPUT


def _open_to_record(store: str | None) -> Store:
    """The store, for writing when it can be (spec versions are recorded), else read-only (a
    read-only file or folder: the check still runs). A missing store is "no store here": a
    check never creates one."""
    from testfleet.cli.history import _open

    _open(store).close()  # exists, and is a testfleet store
    try:
        return _open(store, read_only=False)
    except StoreError as exc:
        if "in use by another process" in exc.message:
            raise
        return _open(store)


@app.command("check")
def check_command(
    spec_file: SpecArg,
    run: Annotated[str, typer.Option("--run", help="A run id, a unique prefix, or 'last'.")] = "last",
    json_out: Annotated[str | None, typer.Option("--json", help="Write the verdicts as JSON here.")] = None,
    md: Annotated[str | None, typer.Option("--md", help="Write a Markdown summary here.")] = None,
    junitxml: Annotated[str | None, typer.Option(
        "--junitxml", help="Write JUnit XML here (one testcase per spec).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="An untested spec fails the check too.")] = False,
    examples: Annotated[int, typer.Option("--examples", help="Violating executions shown per spec.")] = 5,
    store: StoreOpt = None,
) -> None:
    """Evaluate each spec against a run: matching executions, verdict, violating examples."""
    note = None
    from testfleet.analysis.spec_results import load_results, record_versions
    from testfleet.atomic import check_outputs
    from testfleet.reporting import spec_report
    from testfleet.specs.check import HOLDS, UNTESTED, VIOLATED, check
    from testfleet.specs.language import load_specs

    try:
        check_outputs(("--json", json_out), ("--md", md), ("--junitxml", junitxml))
        specs = load_specs(spec_file)
        with _open_to_record(store) as db:
            run_id = db.get_run(run).run_id
            if db.read_only:
                note = "note: the store is read-only here; spec versions were not recorded"
            else:
                record_versions(db, specs)
            table = load_results(db, run_id)
        verdicts = check(specs, table, examples=examples)
        if json_out:
            spec_report.write_json(json_out, verdicts, run_id)
        if md:
            spec_report.write_markdown(md, verdicts, run_id)
        if junitxml:
            spec_report.write_junit(junitxml, verdicts, run_id, spec_file)
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    console = make_console()
    style = {HOLDS: "green", VIOLATED: "bold red", UNTESTED: "yellow"}
    table_out = Table("spec", "verdict", "matching", "violations", "then", box=None,
                      header_style="bold")
    for v in verdicts:
        table_out.add_row(escape(v.spec.ref), f"[{style[v.status]}]{v.status}[/]",
                          str(v.matching), str(v.violations), escape(v.spec.then.describe()))
    console.print(table_out)
    for v in verdicts:
        for e in v.examples:
            console.print(f"  [red]{escape(v.spec.ref)}[/]: variant {e.variant_id} "
                          f"{escape(e.nodeid)} — {escape(e.why)}"
                          + (f": {escape(e.message)}" if e.message else ""))
    console.print(f"{spec_report.summary(verdicts)} (run {run_id}, {len(table)} executions)")
    if note:
        sys.stderr.write(note + "\n")
    failing = any(v.status == VIOLATED for v in verdicts) or (
        strict and any(v.status == UNTESTED for v in verdicts))
    if failing:  # the CI gate's verdict, on stderr so that it shows whatever --json/--md print
        sys.stderr.write(f"spec gate failed: {spec_report.summary(verdicts)}"
                         f"{' (--strict: untested fails)' if strict else ''}; exit {NOT_MET}\n")
    raise typer.Exit(NOT_MET if failing else 0)


@app.command("lint")
def lint_command(
    spec_file: SpecArg,
    space: Annotated[str | None, typer.Option(
        "--space", help="A space (schema, space file or example config) the givens range over.")] = None,
    overlay: Annotated[str | None, typer.Option("--overlay", help="Overlay for an inferred space.")] = None,
) -> None:
    """Find contradictory specs and specs no point of the space can match."""
    from testfleet.specs.language import load_specs
    from testfleet.specs.lint import lint

    try:
        specs = load_specs(spec_file)
        space_obj = None
        if space is not None:
            from testfleet.configs.fuzz import load_input
            space_obj = load_input(space, overlay).space
        findings = lint(specs, space_obj)
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    console = make_console()
    for finding in findings:
        console.print(f"[bold red]{finding.kind}[/]: {escape(finding.message)}")
    console.print(f"{len(specs)} specs, {len(findings)} problems")
    raise typer.Exit(NOT_MET if findings else 0)


@app.command("history")
def history_command(
    spec_id: Annotated[str, typer.Argument(help="A spec id.")],
    store: StoreOpt = None,
) -> None:
    """Every recorded version of a spec."""
    from testfleet.analysis.spec_results import versions
    from testfleet.cli.history import _open

    try:
        with _open(store) as db:
            found = versions(db, spec_id)
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    console = make_console()
    if not found:
        console.print(f"no recorded versions of {escape(spec_id)}")
        raise typer.Exit(BAD_INPUT)
    for version, seen, body in found:
        console.print(f"version {escape(version)} first checked {seen:%Y-%m-%d %H:%M:%S}: "
                      f"{escape(str({k: v for k, v in body.items() if k not in ('id', 'version')}))}")
    raise typer.Exit(0)
