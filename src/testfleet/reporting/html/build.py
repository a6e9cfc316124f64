"""The HTML report of a stored run, with ``testfleet analyze RUN``'s analysis (its defaults):
what ``testfleet run --html F`` writes when its run ends and ``testfleet report RUN --html F``
writes later (both read the store, so both write the same document)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testfleet.store.db import Store

FDR = 0.05  # `testfleet analyze`'s default


def analysis_of(db: Store, run_id: str) -> tuple[dict[str, Any], list[Any]]:
    """What ``testfleet analyze RUN`` says of the run (its JSON document), and its charts."""
    from testfleet.analysis.correlation import analyze
    from testfleet.analysis.dataset import choose_runs, load_frame, load_rows
    from testfleet.analysis.failures import cluster_failures
    from testfleet.analysis.flaky import flaky_tests
    from testfleet.reporting.analysis_plot import analysis_figures
    from testfleet.reporting.analysis_report import picture_subjects, to_json

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
