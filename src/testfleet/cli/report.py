"""``testfleet report RUN --html F``: the HTML report of any stored run, and the writer that
``testfleet run --html F`` calls when its run ends (both read the store, so both write the same
document). The report's analysis is ``testfleet analyze RUN``'s, with its defaults. Exit 0, or 2
for bad input (an unknown run, a path that cannot be written), as ``testfleet show``.
"""

from __future__ import annotations

import sys
from rich.markup import escape

from testfleet.errors import TestfleetError, UsageError
from testfleet.reporting.html.build import write_html_report

BAD_INPUT = 2


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
