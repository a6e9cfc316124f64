"""Tests of the report writers: JUnit XML, JSON, Markdown, and pytest-compatible counting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.model import Outcome, Result, Run
from testfleet.reporting.json_report import write_json
from testfleet.reporting.junit import mangle_nodeid, write_junit, xml_safe
from testfleet.reporting.markdown import markdown_summary, write_markdown
from testfleet.reporting.summary import (
    count_outcomes,
    exit_code_for,
    result_words,
    summary_line,
)

STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_run(**fields: Any) -> Run:
    base: dict[str, Any] = dict(run_id="run-1", started_at=STARTED, seed=42, backend="local",
                                workers=3, duration=1.5, rootdir="/repo", paths=["tests"])
    base.update(fields)
    return Run(**base)


def make_result(nodeid: str, outcome: str, categories: list[str] | None = None,
                **fields: Any) -> Result:
    base: dict[str, Any] = dict(run_id="run-1", variant_id="v-" + nodeid, case_id="c-" + nodeid,
                                nodeid=nodeid, outcome=Outcome(outcome), worker="gw0",
                                categories=categories if categories is not None else [outcome],
                                duration=0.25)
    base.update(fields)
    return Result(**base)


def phases(**outcomes: str | tuple[str, str]) -> dict[str, dict[str, Any]]:
    """phases(setup="passed", call=("failed", "longrepr text"))."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in outcomes.items():
        outcome, longrepr = spec if isinstance(spec, tuple) else (spec, None)
        out[name] = {"outcome": outcome, "duration": 0.01, "longrepr": longrepr}
    return out


def scenario() -> tuple[Run, list[Result], list[dict[str, str]]]:
    """Every outcome once, a flaky test (failed, then passed) and a rerun that kept failing."""
    results = [
        make_result("tests/test_a.py::test_pass", "passed", stdout="hello out\n", duration=2.0,
                    phases=phases(setup="passed", call="passed", teardown="passed")),
        make_result("tests/test_a.py::TestX::test_fail[1|2]", "failed", when="call",
                    message="AssertionError: assert 1 == 2", longrepr="E   assert 1 == 2\nboom",
                    stderr="warn err", file="tests/test_a.py", line=10, keywords=["test_fail"],
                    phases=phases(setup="passed", call=("failed", "E   assert 1 == 2\nboom"),
                                  teardown="passed")),
        make_result("tests/test_a.py::test_skip", "skipped", message="Skipped: not on linux",
                    phases=phases(setup=("skipped", "('tests/test_a.py', 7, 'Skipped: not on linux')"),
                                  teardown="passed")),
        make_result("tests/test_a.py::test_xfail", "xfailed", message="reason: known bug",
                    phases=phases(setup="passed", call=("skipped", "E assert 0"), teardown="passed")),
        make_result("tests/test_a.py::test_xpass", "xpassed"),
        make_result("tests/test_a.py::test_setup_error", "error", when="setup",
                    message="RuntimeError: setup boom", longrepr="E   RuntimeError: setup boom",
                    phases=phases(setup=("failed", "E   RuntimeError: setup boom"))),
        make_result("tests/test_a.py::test_fail_and_teardown", "error", ["failed", "error"],
                    phases=phases(setup="passed", call=("failed", "E   assert 0"),
                                  teardown=("failed", "E   RuntimeError: teardown boom"))),
        make_result("tests/test_b.py::test_slow", "timeout", [], message="timed out after 5s",
                    duration=5.0),
        make_result("tests/test_b.py::test_crash", "crashed", [], message="worker gw1 died"),
        # flaky: attempt 1 failed, attempt 2 passed
        make_result("tests/test_b.py::test_flaky", "failed", attempt=1, final=False,
                    message="AssertionError: flaky", longrepr="E   flaky", worker="gw1"),
        make_result("tests/test_b.py::test_flaky", "passed", attempt=2, flaky=True),
        # still failing after a rerun
        make_result("tests/test_b.py::test_broken", "error", attempt=1, final=False,
                    message="setup went wrong", longrepr="E   setup went wrong", when="setup"),
        make_result("tests/test_b.py::test_broken", "failed", attempt=2, when="call",
                    message="still broken", longrepr="E   still broken"),
    ]
    collect_errors = [{"nodeid": "tests/test_bad.py", "longrepr": "SyntaxError: invalid syntax"}]
    return make_run(), results, collect_errors


# ---------------------------------------------------------------- summary


def test_count_outcomes_counts_every_category_of_final_results_only() -> None:
    run, results, collect_errors = scenario()
    counts = count_outcomes(results)
    assert counts == {"passed": 2, "failed": 3, "skipped": 1, "xfailed": 1, "xpassed": 1,
                      "error": 2, "timeout": 1, "crashed": 1}
    with_collect = count_outcomes(results, collect_errors, deselected=4)
    assert with_collect["error"] == 3 and with_collect["deselected"] == 4


def test_result_words_use_outcome_when_no_categories_and_own_words_for_timeout() -> None:
    assert result_words(make_result("t.py::a", "failed", [])) == ["failed"]
    assert result_words(make_result("t.py::a", "passed", ["passed", "error"])) == ["passed", "error"]
    assert result_words(make_result("t.py::a", "timeout", ["failed"])) == ["timeout"]
    assert result_words(make_result("t.py::a", "crashed", [""])) == ["crashed"]


def test_summary_line_uses_pytest_order_and_wording() -> None:
    counts = {"error": 2, "xpassed": 1, "passed": 3, "xfailed": 1, "skipped": 1, "failed": 1}
    assert summary_line(counts, 0.123) == (
        "1 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors in 0.12s")
    assert summary_line({"error": 1}, 0.5) == "1 error in 0.50s"
    assert summary_line({"warnings": 1, "passed": 2}, 0) == "2 passed, 1 warning in 0.00s"
    assert summary_line({}, 0.01) == "no tests ran in 0.01s"
    assert summary_line({"deselected": 8}, 0.01) == "8 deselected in 0.01s"
    assert summary_line({"timeout": 1, "crashed": 1, "passed": 3, "odd": 1}, 75, flaky=2) == (
        "3 passed, 1 crashed, 1 timeout, 1 odd, 2 flaky in 75.00s (0:01:15)")


@pytest.mark.parametrize(("counts", "collect_errors", "interrupted", "code"), [
    ({"passed": 3, "skipped": 1, "xfailed": 1, "xpassed": 1}, [], False, 0),
    ({"passed": 3, "failed": 1}, [], False, 1),
    ({"passed": 3, "error": 1}, [], False, 1),
    ({"timeout": 1}, [], False, 1),
    ({"crashed": 1, "passed": 1}, [], False, 1),
    ({"passed": 1}, [], True, 2),
    ({"passed": 1}, [{"nodeid": "x.py", "longrepr": "boom"}], False, 2),
    ({}, [], False, 5),
    ({"deselected": 3}, [], False, 5),
    ({"skipped": 2}, [], False, 0),
])
def test_exit_code_for_matches_pytest_codes(counts: dict[str, int], collect_errors: list[Any],
                                            interrupted: bool, code: int) -> None:
    assert exit_code_for(counts, collect_errors, interrupted) == code


# ---------------------------------------------------------------- JUnit


def props(node: ET.Element) -> dict[str, str]:
    found = node.find("properties")
    assert found is not None
    return {p.get("name", ""): p.get("value", "") for p in found.findall("property")}


def child(node: ET.Element, tag: str) -> ET.Element:
    found = node.find(tag)
    assert found is not None, f"no <{tag}> in <{node.tag} name={node.get('name')!r}>"
    return found


def test_mangle_nodeid_like_pytest() -> None:
    assert mangle_nodeid("tests/test_a.py::TestX::test_y[1]") == ("tests.test_a.TestX", "test_y[1]")
    assert mangle_nodeid("t.py::test_p[a::b/c.py]") == ("t", "test_p[a::b/c.py]")
    assert mangle_nodeid("tests/test_bad.py") == ("", "tests.test_bad")


def test_junit_counts_attributes_properties_and_reruns(tmp_path: Path) -> None:
    run, results, collect_errors = scenario()
    out = write_junit(tmp_path / "deep" / "dir" / "junit.xml", run, results, collect_errors)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # 11 final results + 1 collection error
    assert len(cases) == 12 and suite.get("tests") == "12"
    # failures: test_fail, fail_and_teardown, timeout, crashed, broken; errors: setup_error,
    # fail_and_teardown, collection error; skipped: skip + xfail
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("5", "3", "2")
    assert suite.get("name") == "testfleet" and suite.get("time") == "1.500"
    assert suite.get("timestamp", "").startswith("2024-05-01T12:00:00") and suite.get("hostname")
    assert props(suite) == {"run_id": "run-1", "seed": "42", "backend": "local", "workers": "3"}

    by_name = {c.get("name"): c for c in cases}
    fail = by_name["test_fail[1|2]"]
    assert fail.get("classname") == "tests.test_a.TestX"
    assert (fail.get("file"), fail.get("line"), fail.get("time")) == ("tests/test_a.py", "10", "0.250")
    failure = fail.find("failure")
    assert failure is not None and failure.get("message") == "AssertionError: assert 1 == 2"
    assert "boom" in (failure.text or "")
    assert fail.findtext("system-err") == "warn err" and fail.find("system-out") is None
    assert props(fail) == {"worker": "gw0", "variant_id": "v-tests/test_a.py::TestX::test_fail[1|2]",
                           "attempt": "1"}
    assert by_name["test_pass"].findtext("system-out") == "hello out\n"
    assert list(by_name["test_pass"]) == [by_name["test_pass"][0], by_name["test_pass"][1]]

    skipped = by_name["test_skip"].find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.skip"
    assert skipped.get("message") == "not on linux"
    assert skipped.text == "tests/test_a.py:7: not on linux"
    xfail = by_name["test_xfail"].find("skipped")
    assert xfail is not None and (xfail.get("type"), xfail.get("message")) == ("pytest.xfail", "known bug")
    assert [child.tag for child in by_name["test_xpass"]] == ["properties"]

    error = by_name["test_setup_error"].find("error")
    assert error is not None and error.get("message") == 'failed on setup with "RuntimeError: setup boom"'
    both = by_name["test_fail_and_teardown"]
    assert both.find("failure") is not None
    assert child(both, "error").get("message") == 'failed on teardown with "RuntimeError: teardown boom"'
    assert child(by_name["test_slow"], "failure").get("type") == "timeout"
    assert child(by_name["test_crash"], "failure").get("type") == "crashed"

    flaky = by_name["test_flaky"]
    assert props(flaky)["flaky"] == "true" and props(flaky)["attempt"] == "2"
    assert flaky.find("failure") is None
    flaky_failures = flaky.findall("flakyFailure")
    assert len(flaky_failures) == 1 and flaky_failures[0].get("message") == "AssertionError: flaky"
    assert flaky_failures[0].findtext("stackTrace") == "E   flaky"
    broken = by_name["test_broken"]
    assert broken.find("failure") is not None and len(broken.findall("rerunError")) == 1
    assert "flaky" not in props(broken)

    collect = by_name["tests.test_bad"]
    assert collect.get("classname") == ""
    assert child(collect, "error").get("message") == "collection failure"
    assert child(collect, "error").text == "SyntaxError: invalid syntax"


def test_junit_strips_characters_illegal_in_xml(tmp_path: Path) -> None:
    nasty = "bad\x00\x01\x08\x0b\x0c\x1b[31m\ud800\ufffe\uffff end \U0001f600 ok\t\n"
    result = make_result("t.py::test_x[\x07]", "failed", message=nasty, longrepr=nasty,
                         stdout=nasty, stderr=nasty, worker="w\x02")
    run = make_run(run_id="r\x00id")
    path = write_junit(tmp_path / "j.xml", run, [result],
                       [{"nodeid": "bad\x03.py", "longrepr": nasty}])
    raw = path.read_text(encoding="utf-8")
    for char in "\x00\x01\x08\x0b\x0c\x1b\ufffe\uffff":
        assert char not in raw
    case = ET.parse(path).getroot().find("testsuite/testcase[@name='test_x[]']")
    assert case is not None
    assert child(case, "failure").get("message") == "bad[31m end \U0001f600 ok\t\n"
    assert case.findtext("system-out") == "bad[31m end \U0001f600 ok\t\n"
    assert xml_safe(None) == "" and xml_safe(3) == "3"


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, results, collect_errors = scenario()
    target = tmp_path / "junit.xml"
    target.write_text("previous report")

    def explode(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(OSError, match="disk gone"):
        write_junit(target, run, results, collect_errors)
    assert target.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]
    monkeypatch.undo()
    write_junit(target, run, results, collect_errors)
    ET.parse(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


# ---------------------------------------------------------------- JSON


def test_json_report_layout_and_summary(tmp_path: Path) -> None:
    run, results, collect_errors = scenario()
    run = run.model_copy(update={"collected": 11})
    data = json.loads(write_json(tmp_path / "out" / "report.json", run, results,
                                 collect_errors).read_text())
    for key in ("created", "duration", "exitcode", "root", "environment", "summary", "collectors",
                "tests", "warnings", "testfleet"):
        assert key in data
    assert data["exitcode"] == 2 and data["root"] == "/repo" and data["duration"] == 1.5
    assert {"Python", "Platform", "Packages", "Plugins"} <= set(data["environment"])
    # the console line's words: a call failure plus a teardown error counts both, the collection
    # error counts as an error (pytest's "3 failed, 2 passed, ..., 3 errors")
    assert data["summary"] == {"passed": 2, "failed": 3, "skipped": 1, "xfailed": 1, "xpassed": 1,
                               "error": 3, "timeout": 1, "crashed": 1, "total": 11, "collected": 11}
    assert data["collectors"] == [{"nodeid": "tests/test_bad.py", "outcome": "failed", "result": [],
                                   "longrepr": "SyntaxError: invalid syntax"}]
    assert data["warnings"] == []
    tests = {t["nodeid"]: t for t in data["tests"]}
    assert len(data["tests"]) == 11
    fail = tests["tests/test_a.py::TestX::test_fail[1|2]"]
    assert fail["lineno"] == 10 and fail["outcome"] == "failed" and fail["keywords"] == ["test_fail"]
    assert fail["call"]["outcome"] == "failed" and fail["call"]["longrepr"].startswith("E   assert")
    assert fail["call"]["crash"] == {"path": "tests/test_a.py", "lineno": 10,
                                     "message": "AssertionError: assert 1 == 2"}
    assert fail["call"]["stderr"] == "warn err" and "stderr" not in fail["setup"]
    assert fail["setup"] == {"duration": 0.01, "outcome": "passed"}
    assert fail["metadata"] == {"worker": "gw0", "variant_id": "v-tests/test_a.py::TestX::test_fail[1|2]",
                                "attempt": 1, "flaky": False}
    setup_error = tests["tests/test_a.py::test_setup_error"]
    assert set(setup_error) >= {"setup"} and "call" not in setup_error
    assert setup_error["setup"]["crash"]["message"] == "RuntimeError: setup boom"
    assert tests["tests/test_b.py::test_slow"]["call"]["outcome"] == "failed"
    tf = data["testfleet"]
    assert (tf["run_id"], tf["seed"], tf["workers"], tf["backend"]) == ("run-1", 42, 3, "local")
    assert tf["flaky"] == ["tests/test_b.py::test_flaky"]
    assert len(tf["attempts"]) == len(results)
    assert sum(1 for a in tf["attempts"] if not a["final"]) == 2


def test_json_report_exit_code_from_run_when_known(tmp_path: Path) -> None:
    run = make_run(exit_code=0)
    data = json.loads(write_json(tmp_path / "r.json", run, [make_result("t.py::a", "passed")],
                                 []).read_text())
    assert data["exitcode"] == 0 and data["summary"] == {"passed": 1, "total": 1, "collected": 1}


# ---------------------------------------------------------------- Markdown


def test_markdown_summary_lists_failures_flaky_slowest_and_run_facts() -> None:
    run, results, collect_errors = scenario()
    text = markdown_summary(run, results, collect_errors)
    assert text.startswith("## ⚠️ testfleet run run-1: interrupted")
    assert "| `tests/test_a.py::TestX::test_fail[1\\|2]` | failed | AssertionError: assert 1 == 2 |" in text
    assert "| `tests/test_bad.py` | error (collection) | SyntaxError: invalid syntax |" in text
    assert "| `tests/test_b.py::test_slow` | timeout | timed out after 5s |" in text
    assert "| `tests/test_a.py::test_fail_and_teardown` | error | assert 0 |" in text
    assert "test_a.py::test_pass` | failed" not in text
    assert "### Flaky tests" in text and "`tests/test_b.py::test_flaky` (passed on attempt 2 of 2)" in text
    assert "### Slowest 10 tests" in text
    assert text.index("| 5.00s | `tests/test_b.py::test_slow`") < text.index("| 2.00s |")
    assert "| failed | 3 |" in text and "| error | 3 |" in text and "| flaky | 1 |" in text
    assert "run `run-1`" in text and "seed `42`" in text and "3 workers (local)" in text
    assert "duration 1.50s" in text


def test_markdown_message_is_first_line_with_pipes_escaped() -> None:
    result = make_result("t.py::test_x", "failed", message="a | b\nsecond line", longrepr="zzz")
    text = markdown_summary(make_run(), [result], [])
    assert text.startswith("## ❌")
    assert "| `t.py::test_x` | failed | a \\| b |" in text
    assert "second line" not in text


def test_markdown_all_passed_heading() -> None:
    text = markdown_summary(make_run(), [make_result("t.py::a", "passed")], [])
    assert text.startswith("## ✅ testfleet run run-1: passed")
    assert "### Failures" not in text and "### Flaky" not in text


def test_write_markdown_appends_to_github_step_summary(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run, results, collect_errors = scenario()
    step = tmp_path / "step_summary.md"
    step.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    out = write_markdown(tmp_path / "reports" / "summary.md", run, results, collect_errors)
    text = out.read_text(encoding="utf-8")
    assert "test_fail[1\\|2]" in text
    assert step.read_text(encoding="utf-8") == "# earlier step\n" + text
    write_markdown(out, run, results, collect_errors)
    assert step.read_text(encoding="utf-8") == "# earlier step\n" + text + text
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    other = tmp_path / "other.md"
    write_markdown(other, run, results, collect_errors)
    assert step.read_text(encoding="utf-8") == "# earlier step\n" + text + text


# ---------------------------------------------------------------- properties

outcomes = st.sampled_from(list(Outcome))
categories = st.lists(st.sampled_from(["passed", "failed", "error", "skipped", "xfailed",
                                       "xpassed", ""]), max_size=3)
texts = (st.text(max_size=40)
         | st.text(st.characters(min_codepoint=0, max_codepoint=0x20), max_size=10)
         | st.text(st.characters(categories=["Cs", "Co", "Cc"]), max_size=5))  # lone surrogates too


@st.composite
def result_lists(draw: st.DrawFn) -> list[Result]:
    results = []
    for index in range(draw(st.integers(0, 8))):
        nodeid = f"tests/test_{index % 3}.py::" + draw(texts).replace("[", "") + f"[{draw(texts)}]"
        results.append(make_result(
            nodeid, draw(outcomes), draw(categories), message=draw(texts), longrepr=draw(texts),
            stdout=draw(texts), stderr=draw(texts), worker=draw(texts), final=draw(st.booleans()),
            flaky=draw(st.booleans()), attempt=draw(st.integers(1, 3)), when=draw(
                st.sampled_from([None, "setup", "call", "teardown"]))))
    return results


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results=result_lists(), collect=st.lists(texts, max_size=2))
def test_any_results_give_parseable_junit_and_consistent_counts(results: list[Result],
                                                                collect: list[str]) -> None:
    finals = [r for r in results if r.final]
    collect_errors = [{"nodeid": f"bad_{i}.py", "longrepr": text} for i, text in enumerate(collect)]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_junit(Path(tmp) / "junit.xml", make_run(), results, collect_errors)
        suite = ET.parse(path).getroot().find("testsuite")
        assert suite is not None
        assert len(suite.findall("testcase")) == len(finals) + len(collect_errors)
        assert suite.get("tests") == str(len(finals) + len(collect_errors))
        data = json.loads(write_json(Path(tmp) / "r.json", make_run(), results, collect_errors)
                          .read_text(encoding="utf-8"))
        assert data["summary"]["total"] == len(finals)
        write_markdown(Path(tmp) / "s.md", make_run(), results, collect_errors)
    expected = sum(1 if r.outcome in (Outcome.timeout, Outcome.crashed)
                   else (len([c for c in r.categories if c]) or 1) for r in finals)
    assert sum(count_outcomes(results).values()) == expected


# ---------------------------------------------------------------- against real pytest

SUITE = '''
import warnings
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup boom")

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown boom")

def test_pass(): pass
def test_fail(): assert 1 == 2
def test_skip(): pytest.skip("nope")
@pytest.mark.xfail(reason="known")
def test_xfail(): assert 0
@pytest.mark.xfail(reason="known")
def test_xpass(): pass
def test_setup_error(broken): pass
def test_teardown_error(bad_teardown): pass
def test_fail_and_teardown(bad_teardown): assert 0
def test_warns(): warnings.warn(UserWarning("careful"))
'''
# What a worker reports for each test of SUITE: its pytest categories (final results).
SUITE_CATEGORIES = {
    "test_pass": ["passed"], "test_fail": ["failed"], "test_skip": ["skipped"],
    "test_xfail": ["xfailed"], "test_xpass": ["xpassed"], "test_setup_error": ["error"],
    "test_teardown_error": ["passed", "error"], "test_fail_and_teardown": ["failed", "error"],
    "test_warns": ["passed"],
}


def run_pytest(where: Path, *args: str) -> tuple[str, int]:
    """Run real pytest in ``where``; return its last line without the timing, and its exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=where, env=env, capture_output=True, text=True, timeout=120)
    last = proc.stdout.strip().splitlines()[-1].strip("= ")
    return last.rsplit(" in ", 1)[0], proc.returncode


def our_words(counts: dict[str, int]) -> str:
    return summary_line(counts, 0.0).rsplit(" in ", 1)[0]


def write_suite(where: Path, files: dict[str, str]) -> None:
    (where / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (where / name).write_text(textwrap.dedent(text))


@pytest.mark.parametrize(("files", "args", "selected", "collect_errors", "deselected"), [
    ({"test_suite.py": SUITE}, [], list(SUITE_CATEGORIES), 0, 0),
    ({"test_suite.py": SUITE}, ["-k", "pass and not xpass"], ["test_pass"], 0, 8),
    ({"test_suite.py": SUITE}, ["-k", "nothing_matches"], [], 0, 9),
    ({"test_ok.py": "def test_pass(): pass\n", "test_bad.py": "def test_b(:\n"}, [], [], 1, 0),
    ({}, [], [], 0, 0),
], ids=["every-outcome", "some-deselected", "all-deselected", "collection-error", "empty"])
def test_summary_line_and_exit_code_match_real_pytest(
        tmp_path: Path, files: dict[str, str], args: list[str], selected: list[str],
        collect_errors: int, deselected: int) -> None:
    write_suite(tmp_path, files)
    words, returncode = run_pytest(tmp_path, *args)
    results = [make_result(f"test_suite.py::{name}", "passed", SUITE_CATEGORIES[name])
               for name in selected]
    errors = [{"nodeid": "test_bad.py", "longrepr": "SyntaxError"}] * collect_errors
    counts = count_outcomes(results, errors, deselected)
    if "test_warns" in selected:
        counts["warnings"] = 1  # pytest counts the warning test_warns emits
    assert our_words(counts) == words
    assert exit_code_for(counts, errors) == returncode


def test_junit_counts_match_pytest_junitxml(tmp_path: Path) -> None:
    write_suite(tmp_path, {"test_suite.py": SUITE})
    run_pytest(tmp_path, "--junitxml=pytest.xml")
    theirs = ET.parse(tmp_path / "pytest.xml").getroot().find("testsuite")
    results = [make_result(f"test_suite.py::{name}", "error" if "error" in cats else cats[0], cats,
                           message="x", longrepr="x", when="teardown" if len(cats) > 1 else None)
               for name, cats in SUITE_CATEGORIES.items()]
    ours = ET.parse(write_junit(tmp_path / "ours.xml", make_run(), results, [])).getroot()
    suite = ours.find("testsuite")
    assert theirs is not None and suite is not None
    for attr in ("errors", "failures", "skipped"):
        assert suite.get(attr) == theirs.get(attr), attr
    assert {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")} == {
        (c.get("classname"), c.get("name")) for c in theirs.iter("testcase")}
