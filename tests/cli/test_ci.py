"""``testfleet ci github|gitlab``: the printed pipeline parses, has what each CI expects, uses
only flags testfleet takes, and its commands really produce the reports it uploads; a failed
spec gate exits 1 with its own message."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from execution.conftest import clean_env, make_suite, run_cli

from testfleet.cli.app import app, main
from testfleet.reporting.allure import validate_allure

STORE = ".testfleet/testfleet.duckdb"


def pipeline(capsys: pytest.CaptureFixture[str], *args: str) -> dict[Any, Any]:
    assert main(["ci", *args]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert isinstance(document, dict)
    return document


def options(command: str) -> set[str]:
    click_app: Any = typer.main.get_command(app)
    return {name for param in click_app.commands[command].params for name in getattr(param, "opts", [])}


def commands_of(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line) for line in lines if line.startswith("testfleet ")]


def assert_known_flags(words: list[str]) -> None:
    known = options(words[1])
    flags = {w for w in words[2:] if w.startswith("-")}
    assert flags <= known, f"`{' '.join(words)}` uses flags testfleet {words[1]} does not take: {flags - known}"


def test_github_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    flow = pipeline(capsys, "github", "tests/", "--python", "3.11")
    assert flow["on"] == ["push", "pull_request"]  # quoted: YAML 1.1 readers would make `on` True
    job = flow["jobs"]["testfleet"]
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[0] == "actions/checkout@v4"
    assert steps[1]["with"]["python-version"] == "3.11"
    restore = steps[uses.index("actions/cache/restore@v4")]
    save = steps[uses.index("actions/cache/save@v4")]
    assert restore["with"]["path"] == save["with"]["path"] == ".testfleet"
    assert restore["with"]["key"] == save["with"]["key"]
    assert save["if"] == "always()"  # the store is kept after a failing run too
    assert "testfleet-" in restore["with"]["restore-keys"].splitlines()
    upload = steps[uses.index("actions/upload-artifact@v4")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[0] == "python -m pip install testfleet"
    commands = commands_of(runs)
    run, badge = commands
    assert run[:3] == ["testfleet", "run", "tests/"] and run[run.index("--store") + 1] == STORE
    for flag, path in (("--junitxml", "reports/junit.xml"), ("--json", "reports/report.json"),
                       ("--md", "reports/summary.md"), ("--alluredir", "reports/allure-results")):
        assert run[run.index(flag) + 1] == path
    if "--html" in options("run"):
        assert run[run.index("--html") + 1] == "reports/report.html"
    assert badge[:3] == ["testfleet", "badge", "last"] and badge[badge.index("--store") + 1] == STORE
    for words in commands:
        assert_known_flags(words)
    # ordered: restore before the run, save and upload after it
    assert steps.index(restore) < [i for i, s in enumerate(steps) if "testfleet run" in s.get("run", "")][0]
    assert steps.index(save) > steps.index(restore)


def test_gitlab_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    document = pipeline(capsys, "gitlab", "--install", "-e .[test] testfleet")
    job = document["testfleet"]
    assert document["stages"] == ["test"] and job["stage"] == "test"
    assert job["cache"]["paths"] == [".testfleet/"] and job["cache"]["when"] == "always"
    assert job["cache"]["key"] == "testfleet-$CI_COMMIT_REF_SLUG"
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["reports/"]
    assert job["artifacts"]["reports"] == {"junit": "reports/junit.xml", "codequality": "reports/codequality.json"}
    assert job["script"][0] == "python -m pip install -e .[test] testfleet"
    run, = commands_of(job["script"])
    badge, = commands_of(job["after_script"])
    assert run[run.index("--codequality") + 1] == "reports/codequality.json"
    assert run[run.index("--junitxml") + 1] == "reports/junit.xml"
    for words in (run, badge):
        assert_known_flags(words)


def test_unknown_ci_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "jenkins"]) == 2
    assert "expected github or gitlab" in capsys.readouterr().err


SUITE = {"tests/test_a.py": """
    def test_ok():
        pass

    def test_bad():
        total = 2
        assert total == 3
    """}


@pytest.fixture(scope="module")
def pipeline_ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GitLab job's testfleet commands, run as printed (the CI's cache restored nothing)."""
    root = make_suite(tmp_path_factory.mktemp("ci") / "project", SUITE)
    printed = run_cli(root, "ci", "gitlab")
    assert printed.returncode == 0, printed.log
    job = yaml.safe_load(printed.stdout)["testfleet"]
    for line in [*job["script"][1:], *job["after_script"]]:
        words = shlex.split(line)
        assert words[0] == "testfleet"
        done = subprocess.run([sys.executable, "-m", "testfleet", *words[1:]], cwd=root, env=clean_env(),
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode in (0, 1), f"{line}\n{done.stdout}\n{done.stderr}"
    return root


@pytest.mark.slow
def test_the_pipeline_commands_write_what_it_uploads(pipeline_ran: Path) -> None:
    reports = pipeline_ran / "reports"
    assert (pipeline_ran / STORE).is_file()  # the folder the cache keeps
    # GitLab's JUnit parser reads testcase classname/name/file and the failure child
    cases = {c.get("name"): c for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")}
    assert cases["test_bad"].get("file") == "tests/test_a.py" and cases["test_bad"].find("failure") is not None
    issues = json.loads((reports / "codequality.json").read_text())
    assert [(i["check_name"], i["location"]) for i in issues] == [
        ("testfleet/failed", {"path": "tests/test_a.py", "lines": {"begin": 6}})]
    assert validate_allure(reports / "allure-results") == []
    statuses = sorted(json.loads(p.read_text())["status"] for p in (reports / "allure-results").glob("*-result.json"))
    assert statuses == ["failed", "passed"]
    badge = ET.parse(reports / "badge.svg").getroot()
    assert "1 failed, 1 passed" in [t.text for t in badge.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.slow
def test_a_failed_spec_gate_exits_1_with_its_own_message(pipeline_ran: Path) -> None:
    specs = pipeline_ran / "specs.yaml"
    specs.write_text("specs:\n  - {id: bad-passes, when: 'tests/test_a.py::test_bad', then: passes}\n"
                     "  - {id: ok-passes, when: 'tests/test_a.py::test_ok', then: passes}\n")
    gate = run_cli(pipeline_ran, "spec", "check", specs, "--store", STORE)
    assert gate.returncode == 1, gate.log
    assert "spec gate failed: 1 violated, 1 holds; exit 1" in gate.stderr.splitlines()
    specs.write_text("specs:\n  - {id: ok-passes, when: 'tests/test_a.py::test_ok', then: passes}\n")
    held = run_cli(pipeline_ran, "spec", "check", specs, "--store", STORE)
    assert held.returncode == 0 and "spec gate failed" not in held.stderr, held.log
    specs.write_text("specs: 3\n")
    bad = run_cli(pipeline_ran, "spec", "check", specs, "--store", STORE)
    assert bad.returncode == 2 and "spec gate failed" not in bad.stderr, bad.log
