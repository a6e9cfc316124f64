"""The run summary every notifier sends: groups, new failures against earlier runs, filters."""

from __future__ import annotations

from testfleet.reporting.notify.summary import summarize
from testfleet.store.db import Store

from .conftest import Outcome, store_run


def test_failures_are_new_only_when_they_did_not_fail_before_in_the_same_project(store: Store) -> None:
    store_run(store, "r1", [Outcome("tests/test_a.py::test_old", "failed", "AssertionError: old", 7),
                            Outcome("tests/test_a.py::test_fixed", "failed", "AssertionError: x", 9),
                            Outcome("tests/test_a.py::test_new")], minute=0)
    # another project in the same store fails test_new: it does not count for this one
    store_run(store, "other", [Outcome("tests/test_a.py::test_new", "failed", "AssertionError: y", 5)],
              rootdir="/elsewhere", minute=1)
    run = store_run(store, "r2", [Outcome("tests/test_a.py::test_old", "failed", "AssertionError: old", 7),
                                  Outcome("tests/test_a.py::test_fixed"),
                                  Outcome("tests/test_a.py::test_new", "failed", "ValueError: boom 17", 12)],
                    minute=2)
    summary = summarize(store, run)
    assert summary.previous_run == "r1"
    assert {f.nodeid: f.new for f in summary.failures} == {"tests/test_a.py::test_old": False,
                                                           "tests/test_a.py::test_new": True}
    assert [f.nodeid for f in summary.new_failures] == ["tests/test_a.py::test_new"]
    assert {f.nodeid: f.line for f in summary.failures} == {"tests/test_a.py::test_old": 7,
                                                            "tests/test_a.py::test_new": 12}
    assert summary.matches(["new-failures"]) and summary.matches(["failure"]) and not summary.matches(["flaky"])


def test_failures_with_one_fingerprint_form_one_group_largest_first(store: Store) -> None:
    run = store_run(store, "r1", [
        Outcome("tests/test_db.py::test_a[pg]", "failed", "ConnectionError: refused by 10.0.0.1:5432", 4),
        Outcome("tests/test_db.py::test_a[mysql]", "failed", "ConnectionError: refused by 10.0.0.7:3306", 4),
        Outcome("tests/test_x.py::test_c", "failed", "KeyError: 'name'", 3),
        Outcome("tests/test_x.py::test_d", flaky=True)])
    summary = summarize(store, run)
    assert [len(g.nodeids) for g in summary.groups] == [2, 1]
    assert set(summary.groups[0].nodeids) == {"tests/test_db.py::test_a[pg]", "tests/test_db.py::test_a[mysql]"}
    assert summary.groups[0].exception == "ConnectionError" and summary.groups[0].new
    assert summary.flaky == ("tests/test_x.py::test_d",) and summary.matches(["flaky"])


def test_a_passing_run_matches_only_always(store: Store) -> None:
    summary = summarize(store, store_run(store, "r1", [Outcome("tests/test_a.py::test_ok")]))
    assert not summary.failed and summary.groups == ()
    assert [w for w in ("always", "failure", "new-failures", "flaky") if summary.matches([w])] == ["always"]
    assert summary.to_json()["counts"] == {"passed": 1}
