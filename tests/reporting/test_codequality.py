"""GitLab Code Quality report: the Code Climate fields GitLab reads, at the line that failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.model import Outcome, Result
from testfleet.reporting.codequality import codequality_issues, crash_line, write_codequality

GITLAB_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}
LONGREPR = """def test_bad():
        helper()
>       assert total == 3
E       assert 2 == 3

tests/test_a.py:12: AssertionError
"""
NESTED = """tests/test_a.py:20: in test_calls
    helper()
src/app/util.py:4: in helper
    raise ValueError("x")
E   ValueError: x
src/app/util.py:4: ValueError
"""


def make(nodeid: str, outcome: str, **fields: Any) -> Result:
    base: dict[str, Any] = dict(run_id="r", variant_id="v-" + nodeid, case_id="c", nodeid=nodeid,
                                outcome=Outcome(outcome), file=nodeid.split("::")[0], line=10)
    base.update(fields)
    return Result(**base)


def assert_gitlab_shape(issue: dict[str, Any]) -> None:
    """The subset GitLab documents for its Code Quality report."""
    assert isinstance(issue["description"], str) and issue["description"]
    assert isinstance(issue["check_name"], str) and issue["check_name"]
    assert isinstance(issue["fingerprint"], str) and len(issue["fingerprint"]) == 32
    assert issue["severity"] in GITLAB_SEVERITIES
    assert isinstance(issue["location"]["path"], str) and issue["location"]["path"]
    assert isinstance(issue["location"]["lines"]["begin"], int) and issue["location"]["lines"]["begin"] >= 1


def test_failures_errors_flaky_and_collection_errors(tmp_path: Path) -> None:
    results = [
        make("tests/test_a.py::test_ok", "passed"),
        make("tests/test_a.py::test_bad", "failed", message="assert 2 == 3", longrepr=LONGREPR, fingerprint="fp1"),
        make("tests/test_a.py::test_calls", "error", message="ValueError: x", longrepr=NESTED),
        make("tests/test_a.py::test_hang", "timeout", message="killed after 1s"),
        make("tests/test_a.py::test_flaky", "failed", final=False, attempt=1, longrepr=LONGREPR,
             message="assert 2 == 3", variant_id="vf"),
        make("tests/test_a.py::test_flaky", "passed", attempt=2, flaky=True, variant_id="vf"),
        make("tests/test_a.py::test_skip", "skipped"),
    ]
    errors = [{"nodeid": "tests/test_b.py", "longrepr": "tests/test_b.py:3: in <module>\n    import nope\n"
                                                         "E   ModuleNotFoundError"}]
    path = write_codequality(tmp_path / "gl-code-quality.json", results, errors)
    issues = json.loads(path.read_text())
    for issue in issues:
        assert_gitlab_shape(issue)
    by_check = {i["check_name"]: i for i in issues}
    assert set(by_check) == {"testfleet/collection-error", "testfleet/failed", "testfleet/error",
                             "testfleet/timeout", "testfleet/flaky"}
    assert by_check["testfleet/failed"]["location"] == {"path": "tests/test_a.py", "lines": {"begin": 12}}
    assert by_check["testfleet/failed"]["description"] == "tests/test_a.py::test_bad failed: assert 2 == 3"
    assert by_check["testfleet/failed"]["severity"] == "major"
    # the failing line in the test's file, not in the helper it called
    assert by_check["testfleet/error"]["location"]["lines"]["begin"] == 20
    assert by_check["testfleet/timeout"]["location"]["lines"]["begin"] == 10  # the test's own line
    assert by_check["testfleet/timeout"]["severity"] == "critical"
    flaky = by_check["testfleet/flaky"]
    assert flaky["severity"] == "minor" and flaky["location"]["lines"]["begin"] == 12
    assert "passed on attempt 2 after failing: assert 2 == 3" in flaky["description"]
    assert by_check["testfleet/collection-error"]["location"] == {"path": "tests/test_b.py", "lines": {"begin": 3}}
    assert by_check["testfleet/collection-error"]["severity"] == "blocker"
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_fingerprints_are_stable_and_explored_repeats_are_one_issue() -> None:
    def failing(variant: str, fingerprint: str = "same") -> Result:
        return make("tests/test_x.py::test_x[baseline]", "failed", variant_id=variant,
                    message="ValueError", fingerprint=fingerprint)

    first = codequality_issues([failing("v1"), failing("v2"), failing("v3", "other")],
                               variants={"v3": {"origin": "edge", "params": {"n": 19}}})
    assert len(first) == 2 and first[0]["description"].endswith("(2 executions)")
    assert first[1]["description"] == "tests/test_x.py::test_x[edge: n=19] failed: ValueError"
    again = codequality_issues([failing("v9")])  # the next pipeline: same test, same failure
    assert again[0]["fingerprint"] == first[0]["fingerprint"]
    assert codequality_issues([make("t.py::test_ok", "passed")]) == []


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["tests/test_a.py", "a b/t.py", "t.py"]), st.integers(1, 10**6))
def test_crash_line_never_fails_and_finds_the_entry(noise: str, path: str, line: int) -> None:
    found = crash_line(make(f"{path}::test_x", "failed", longrepr=noise, line=7))
    assert isinstance(found, int) and found >= 1
    text = f"{noise}\n{path}:{line}: AssertionError\n"
    assert crash_line(make(f"{path}::test_x", "failed", longrepr=text, line=7)) == line
