"""``testfleet ci github|gitlab`` (a ready pipeline) and ``testfleet badge`` (a status badge).

The pipeline installs testfleet, restores the store folder (``.testfleet/``) from the CI cache and
saves it again after the run, pass or fail, so that history-driven order, ``--ff`` and ``--lf``,
flaky detection and ``testfleet analyze --runs N`` work across pipelines; runs the suite with every
report testfleet writes; makes the badge; and uploads the reports as artefacts (GitLab also reads
the JUnit XML and the Code Quality report into the merge request).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from testfleet.errors import TestfleetError

BAD_INPUT = 2
STORE = ".testfleet/testfleet.duckdb"
# A run's report flags and the files they write under the reports folder, in the order printed.
REPORTS = (("--junitxml", "junit.xml"), ("--json", "report.json"), ("--md", "summary.md"),
           ("--html", "report.html"), ("--alluredir", "allure-results"), ("--codequality", "codequality.json"))
# GitHub has no use for a Code Quality report; GitLab shows the JUnit and Code Quality reports itself.
SKIP = {"github": {"--codequality"}, "gitlab": {"--md"}}


def _run_flags() -> set[str]:
    """The options this testfleet's ``run`` takes (``--html`` arrives with the HTML report)."""
    import typer

    from testfleet.cli.app import app

    command: Any = typer.main.get_command(app)
    return {name for param in command.commands["run"].params for name in getattr(param, "opts", [])}


def run_command(provider: str, paths: Sequence[str], workers: str, reports: str) -> str:
    flags = _run_flags()
    words = ["testfleet", "run", *paths, "--workers", workers, "--store", STORE]
    for flag, name in REPORTS:
        if flag in flags and flag not in SKIP[provider]:
            words += [flag, f"{reports}/{name}"]
    return shlex.join(words)


def badge_command(reports: str) -> str:
    return shlex.join(["testfleet", "badge", "last", "-o", f"{reports}/badge.svg", "--store", STORE])


def github_workflow(paths: Sequence[str], python: str, install: str, workers: str, reports: str) -> dict[str, Any]:
    key = "testfleet-${{ github.ref_name }}-${{ github.run_id }}"
    store = {"path": ".testfleet", "key": key}
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": python}},
        {"name": "Install testfleet", "run": f"python -m pip install {install}"},
        {"name": "Restore the testfleet store (history, --ff, flaky detection)",
         "uses": "actions/cache/restore@v4",
         "with": {**store, "restore-keys": "testfleet-${{ github.ref_name }}-\ntestfleet-\n"}},
        {"name": "Run the tests", "run": run_command("github", paths, workers, reports)},
        {"name": "Status badge", "if": "always()", "run": badge_command(reports)},
        # a separate save step: actions/cache's own post step saves only when the job passed,
        # and the failures are what the next run must know first
        {"name": "Save the testfleet store", "if": "always()", "uses": "actions/cache/save@v4", "with": store},
        {"name": "Upload the reports", "if": "always()", "uses": "actions/upload-artifact@v4",
         "with": {"name": "testfleet-reports", "path": f"{reports}/", "if-no-files-found": "warn"}},
    ]
    return {"name": "tests", "on": ["push", "pull_request"],
            "jobs": {"testfleet": {"runs-on": "ubuntu-latest", "steps": steps}}}


def gitlab_pipeline(paths: Sequence[str], python: str, install: str, workers: str, reports: str) -> dict[str, Any]:
    return {"stages": ["test"], "testfleet": {
        "stage": "test", "image": f"python:{python}",
        # the cache is saved even when the job fails (when: always), keyed by branch, and a new
        # branch starts from the default branch's store
        "cache": {"key": "testfleet-$CI_COMMIT_REF_SLUG", "fallback_keys": ["testfleet-$CI_DEFAULT_BRANCH"],
                  "paths": [".testfleet/"], "when": "always"},
        "script": [f"python -m pip install {install}", run_command("gitlab", paths, workers, reports)],
        "after_script": [badge_command(reports)],
        "artifacts": {"when": "always", "expire_in": "30 days", "paths": [f"{reports}/"],
                      "reports": {"junit": f"{reports}/junit.xml",
                                  "codequality": f"{reports}/codequality.json"}},
    }}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, the way people write pipelines."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)

HEADER = {"github": "# .github/workflows/tests.yml — written by `testfleet ci github`\n",
          "gitlab": "# .gitlab-ci.yml — written by `testfleet ci gitlab`\n"}


def pipeline_yaml(provider: str, paths: Sequence[str] = (), python: str = "3.12", install: str = "testfleet",
                  workers: str = "auto", reports: str = "reports") -> str:
    """The pipeline for ``provider`` (github or gitlab) as YAML text."""
    build = {"github": github_workflow, "gitlab": gitlab_pipeline}[provider]
    document = build(list(paths), python, install, workers, reports)
    return HEADER[provider] + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000)


def print_pipeline(provider: str, paths: Sequence[str], python: str, install: str, workers: str,
                   reports: str) -> int:
    if provider not in ("github", "gitlab"):
        sys.stderr.write(f"ERROR: unknown CI {provider!r}; expected github or gitlab\n")
        return BAD_INPUT
    sys.stdout.write(pipeline_yaml(provider, paths, python, install, workers, reports))
    return 0


def make_badge(ref: str, output: str, label: str, store: str | None) -> int:
    from testfleet.atomic import check_output
    from testfleet.cli.history import _open
    from testfleet.reporting.badge import badge_message, write_badge

    try:
        check_output(output, "--output")
        with _open(store) as db:
            run = db.get_run(ref)
        write_badge(output, run, label)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    message, _ = badge_message(run.counts, run.flaky, run.status)
    sys.stdout.write(f"{output}: {label} | {message} (run {run.run_id})\n")
    return 0
