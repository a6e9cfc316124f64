"""``testfleet scenarios from-openapi``: HTTP scenario files from an OpenAPI 3 document.

Exit codes (DESIGN.md): 0 done, 2 for bad input (one ``ERROR:`` line, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from testfleet.errors import TestfleetError

app = typer.Typer(help="HTTP scenarios (*.scenario.yaml): import them from an OpenAPI document.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

BAD_INPUT = 2


@app.callback()
def scenarios() -> None:
    """HTTP scenarios (*.scenario.yaml): import them from an OpenAPI document."""


@app.command("from-openapi")
def from_openapi_command(
    spec: Annotated[str, typer.Argument(help="An OpenAPI 3.0 or 3.1 document (YAML or JSON).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Directory for the scenario files.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace existing scenario files whose content differs.")] = False,
) -> None:
    """Write one <operation>.scenario.yaml per operation, parameters from the schemas."""
    from testfleet.adapters.openapi import (
        load_openapi,
        scenarios_from_openapi,
        write_scenarios,
    )

    from testfleet.atomic import check_output

    try:
        check_output(out, "--out", folder=True)
        files = scenarios_from_openapi(load_openapi(spec), source=spec)
        if not files:
            sys.stderr.write(f"ERROR: {spec} [paths]: no operations to import (expected at "
                             "least one path with get, post, put, patch, delete, head or "
                             "options)\n")
            raise typer.Exit(BAD_INPUT)
        written = write_scenarios(files, out, force=force)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        raise typer.Exit(BAD_INPUT) from None
    for path, state in written:
        print(f"{state:9} {Path(path)}")
    changed = sum(state != "unchanged" for _, state in written)
    print(f"{len(written)} scenario files from {spec} in {out} ({changed} written, "
          f"{len(written) - changed} unchanged)")
    raise typer.Exit(0)
