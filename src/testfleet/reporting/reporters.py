"""The built-in report files, registered through the plugin hook ``testfleet_add_reporters``:
JUnit XML (``--junitxml``), pytest-json-report JSON (``--json``), Markdown (``--md``), Allure
results (``--alluredir``, a folder), GitLab Code Quality (``--codequality``) and the
self-contained HTML report (``--html``).

Each writer is called as ``write(path, run, outcome, store)`` when the run ends, as a plugin's is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testfleet.plugins import ReporterSpec, hookimpl

__all__ = ["testfleet_add_reporters"]


def _junit(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.junit import write_junit

    return write_junit(path, run, outcome.results, outcome.collect_errors,
                       (outcome.exploration or {}).get("variants"))


def _json(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.json_report import write_json

    return write_json(path, run, outcome.results, outcome.collect_errors, outcome.warnings)


def _markdown(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.markdown import write_markdown

    return write_markdown(path, run, outcome.results, outcome.collect_errors)


def _allure(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.allure import write_allure_run

    return write_allure_run(path, store, run, outcome.results, outcome.collect_errors)


def _html(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.html.build import write_html_report

    return write_html_report(store, run.run_id, path)  # read back from the store, as `testfleet report`


def _codequality(path: str, run: Any, outcome: Any, store: Any) -> Path:
    from testfleet.reporting.codequality import write_codequality

    return write_codequality(path, outcome.results, outcome.collect_errors,
                             (outcome.exploration or {}).get("variants"))


@hookimpl
def testfleet_add_reporters() -> list[ReporterSpec]:
    return [
        ReporterSpec("junit", _junit, setting="junitxml", description="JUnit XML"),
        ReporterSpec("json", _json, setting="json_report", description="pytest-json-report JSON"),
        ReporterSpec("md", _markdown, setting="md",
                     description="a Markdown summary (also to $GITHUB_STEP_SUMMARY)"),
        ReporterSpec("allure", _allure, setting="alluredir", folder=True,
                     description="Allure results (a folder)"),
        ReporterSpec("codequality", _codequality, setting="codequality",
                     description="GitLab Code Quality JSON"),
        ReporterSpec("html", _html, setting="html",
                     description="one self-contained HTML report (opens offline)"),
    ]
