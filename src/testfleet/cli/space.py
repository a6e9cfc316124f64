"""``testfleet space show|fuzz|coverage``: parameter spaces from the command line.

Exit codes (DESIGN.md): 0 done, 1 when ``coverage --min`` is not reached, 2 for bad input.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError, UnsatisfiableError
from testfleet.settings import MAX_SEED
from testfleet.reporting.consoles import make_console

app = typer.Typer(help="Parameter spaces: show one, fuzz configurations from it, measure coverage.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2
NOT_MET = 1

InputArg = Annotated[str, typer.Argument(
    help="A JSON Schema, a space file (dimensions + constraints, YAML/JSON) or an example "
         "configuration (YAML, JSON, TOML, INI, XML, .properties) whose space is inferred.")]
OverlayOpt = Annotated[str | None, typer.Option(
    "--overlay", help="YAML that adjusts an inferred space: parameters and constraints.")]


def _error(exc: TestfleetError) -> int:
    sys.stderr.write(f"ERROR: {exc}\n")
    if isinstance(exc, UnsatisfiableError) and exc.conflict:
        sys.stderr.write("constraints in conflict:\n" +
                         "".join(f"  - {text}\n" for text in exc.conflict))
    return BAD_INPUT


@app.command("show")
def show_command(path: InputArg, overlay: OverlayOpt = None) -> None:
    """List a space's dimensions, levels, size and constraints."""
    from testfleet.configs.fuzz import load_input

    console = make_console()
    try:
        source = load_input(path, overlay)
        source.space.check_satisfiable()
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    space = source.space
    table = Table("parameter", "dimension", "levels", box=None, header_style="bold")
    for name, dim in space.dimensions.items():
        table.add_row(escape(name), escape(repr(dim)),
                      escape(", ".join(level.label for level in space.levels(name))))
    console.print(table)
    size = space.log10_size()
    shown = "infinite (continuous dimensions)" if math.isinf(size) else \
        (f"{space.size():,}" if size < 15 else f"about 10^{size:.1f}")
    console.print(f"{len(space)} dimensions from {source.kind} {escape(path)}; points: {shown}")
    for c in space.constraints:
        console.print(f"constraint: {escape(c.text)}")
    raise typer.Exit(0)


@app.command("fuzz")
def fuzz_command(
    path: InputArg,
    out: Annotated[str, typer.Option("--out", "-o", help="Directory for the variant files and manifest.json.")],
    strategy: Annotated[str, typer.Option(
        "--strategy", "-s", help="random | edge | pairwise | t-way | mixed")] = "mixed",
    count: Annotated[int | None, typer.Option(
        "--count", "-n", min=1, max=10_000_000, help="How many variants (required for random and mixed; caps the "
                                                     "others).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Same seed, same variants.")] = 0,
    strength: Annotated[int, typer.Option("--strength", "-t", help="t for t-way covering arrays (2..4).")] = 2,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="yaml | json | toml | ini | xml | properties (default: the input's own).")] = None,
    overlay: OverlayOpt = None,
    extend: Annotated[str | None, typer.Option(
        "--extend", help="Variants already run (a manifest or a directory of configs): cover what they don't.")] = None,
) -> None:
    """Write one configuration file per generated variant, plus a manifest."""
    from testfleet.atomic import check_output
    from testfleet.configs.fuzz import fuzz

    console = make_console(stderr=True)
    if strategy in ("random", "mixed") and count is None:
        raise typer.BadParameter(f"--strategy {strategy} needs --count", param_hint="'--count'")
    try:
        check_output(out, "--out", folder=True)
        _, result, written = fuzz(path, strategy=strategy, count=count, seed=seed, out=out,
                                       strength=strength, fmt=fmt, overlay=overlay,
                                       extend=extend)
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    console.print(f"{len(result)} variants ({strategy}, seed {seed}) of {escape(path)} "
                  f"-> {escape(str(written))}/ (manifest.json)")
    if not result.uniform:
        console.print("note: the constraints accept under 1 in 10,000 random points; variants "
                      "came from the constraint search and are valid but not uniform")
    for text in result.impossible:
        console.print(f"note: edge {escape(text)} breaks a constraint whatever else changes")
    raise typer.Exit(0)


@app.command("coverage")
def coverage_command(
    path: InputArg,
    variants: Annotated[str | None, typer.Option(
        "--variants", help="A fuzz manifest, its directory, or a directory of configuration files.")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="A run in the store (id or 'last'): its variants and their outcomes.")] = None,
    strength: Annotated[int, typer.Option("--strength", "-t", help="t of the t-way measures.")] = 2,
    overlay: OverlayOpt = None,
    gaps: Annotated[int, typer.Option("--gaps", help="How many missing tuples to list.")] = 15,
    html: Annotated[str | None, typer.Option(
        "--html", help="Write heatmaps and the completeness curve (plotly) here.")] = None,
    png: Annotated[str | None, typer.Option(
        "--png", help="Write the pairwise heatmap as PNG here (needs Chromium).")] = None,
    json_out: Annotated[str | None, typer.Option(
        "--json", help="Write the measures, combinations and gaps as JSON here.")] = None,
    minimum: Annotated[float | None, typer.Option(
        "--min", min=0.0, max=1.0, help="Exit 1 when simple t-way coverage is below this fraction (0..1).")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="DuckDB file for --run (default: from settings).")] = None,
) -> None:
    """NIST CCM coverage of a space by the variants that ran, the gaps, and heatmaps."""
    from testfleet.analysis.space_coverage import measure_points, points_of_run
    from testfleet.atomic import check_outputs
    from testfleet.configs.fuzz import load_input, load_points

    if (variants is None) == (run is None):
        raise typer.BadParameter("give exactly one of --variants and --run",
                                 param_hint="'--variants' / '--run'")
    try:
        check_outputs(("--html", html), ("--png", png), ("--json", json_out))
        source = load_input(path, overlay)
        failed = None
        if variants is not None:
            points = load_points(source, variants)
        else:
            from testfleet.cli.history import _open
            with _open(store) as db:
                points, failed = points_of_run(db, run, source.space)  # type: ignore[arg-type]
        result = measure_points(source.space, points, strength, failed=failed)
        data = result.to_dict(gap_limit=max(gaps, 100))
        _print(result, data, gaps)
        if json_out:
            from testfleet.reporting.summary import atomic_write_text
            atomic_write_text(Path(json_out), json.dumps(data, indent=2, default=str))
        if html or png:
            from testfleet.reporting.coverage_plot import (
                coverage_figures,
                write_html,
                write_png,
            )
            figures = coverage_figures(data, result.matrix, source.space.names,
                                       pair_details=result.pair_details())
            if html:
                write_html(figures, html)
            if png:
                write_png(figures[0], png)
    except TestfleetError as exc:
        raise typer.Exit(_error(exc)) from None
    code = NOT_MET if minimum is not None and result.report.simple < minimum else 0
    raise typer.Exit(code)


def _print(result: Any, data: dict[str, Any], gaps: int) -> None:
    console = make_console()
    report = result.report
    t = report.strength
    console.print(f"{report.rows} variants, {len(result.space)} dimensions, t = {t}"
                  + (f" ({result.outside} outside the space, not counted)" if result.outside
                     else ""))
    console.print(f"simple {t}-way coverage: {report.simple:.1%} "
                  f"({report.covered_tuples} of {report.valid_tuples} valid {t}-tuples)")
    console.print(f"fully covered {t}-combinations: {report.full_combinations:.1%}; "
                  f"least covered combination: {report.minimum:.1%}")
    curve = {round(p, 2): f for p, f in report.completeness}
    console.print("(p, t)-completeness: " + ", ".join(
        f"p={p:.2f}: {curve.get(p, 0.0):.0%}" for p in (0.5, 0.75, 0.9, 1.0)))
    shown = data["gaps"][:gaps]
    if shown:
        table = Table("missing combination", "importance", box=None, header_style="bold")
        for gap in shown:
            table.add_row(escape(", ".join(f"{c}={v}" for c, v in
                                           zip(gap["columns"], gap["levels"], strict=True))),
                          f"{gap['importance']:.3f}")
        console.print(table)
        if data["gaps_total"] > len(shown):
            console.print(f"... {data['gaps_total'] - len(shown)} more missing {t}-tuples")
