"""``testfleet report RUN --html F``: the HTML report of any stored run, and the writer that
``testfleet run --html F`` calls when its run ends (both read the store, so both write the same
document). The report's analysis is ``testfleet analyze RUN``'s, with its defaults. Exit 0, or 2
for bad input (an unknown run, a path that cannot be written), as ``testfleet show``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape

from testfleet.errors import TestfleetError, UsageError
from testfleet.store.db import Store

BAD_INPUT = 2
FDR = 0.05  # `testfleet analyze`'s default


def analysis_of(db: Store, run_id: str) -> tuple[dict[str, Any], list[Any]]:
    """What ``testfleet analyze RUN`` says of the run (its JSON document), and its charts."""
    from testfleet.analysis.correlation import analyze
    from testfleet.analysis.dataset import choose_runs, load_frame, load_rows
    from testfleet.analysis.failures import cluster_failures
    from testfleet.analysis.flaky import flaky_tests
    from testfleet.cli.analyze import picture_subjects, to_json
    from testfleet.reporting.analysis_plot import analysis_figures

    chosen = choose_runs(db, run_id, 1)
    frame = load_frame(db, chosen)
    rows = load_rows(db, chosen)
    data = to_json({"runs": [r.run_id for r in chosen], "analysis": analyze(frame, fdr=FDR, seed=0),
                    "clusters": cluster_failures(rows), "flaky": flaky_tests(rows), "next": [],
                    "next_asked": False})
    params, pairs = picture_subjects(data)
    return data, analysis_figures(frame, params, pairs)


def write_html_report(db: Store, run_id: str, path: str | os.PathLike[str]) -> Path:
    """The HTML report of the stored run ``run_id``, written to ``path`` atomically."""
    from testfleet.reporting.html import gather, write

    analysis, figures = analysis_of(db, run_id)
    return write(path, gather(db, run_id, analysis=analysis, analysis_figures=figures))


def report_command(ref: str, html: str | None, store: str | None) -> int:
    from testfleet.atomic import check_outputs
    from testfleet.cli.history import _open
    from testfleet.reporting.consoles import make_console

    try:
        if not html:
            raise UsageError("nothing to write", place="testfleet report",
                             expected="--html FILE")
        check_outputs(("--html", html))
        with _open(store) as db:
            run = db.get_run(ref)
            written = write_html_report(db, run.run_id, html)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    make_console().print(f"report: {escape(str(written))} (run {escape(run.run_id)})")
    return 0
