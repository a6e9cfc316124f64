"""Flakiness: planted flaky, broken and fixed tests, reruns, and the Wilson interval's properties."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from testfleet.analysis.flaky import FlakyTest, flaky_tests, wilson_interval

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def execution(run: str, outcome: str, *, sha: str | None = "abc123def4567", nodeid: str = "tests/t.py::test_a",
              variant: str = "v-a", attempt: int = 1, final: bool = True, flaky: bool = False,
              minutes: int = 0) -> dict:
    return {"run_id": run, "git_sha": sha, "variant_id": variant, "nodeid": nodeid, "attempt": attempt,
            "outcome": outcome, "final": final, "flaky": flaky, "finished_at": T0 + timedelta(minutes=minutes)}


def test_planted_flaky_test_scores_its_failure_rate() -> None:
    failing_runs = set(random.Random(7).sample(range(20), 6))  # 30% of 20 runs of one sha
    rows = [execution(f"r{i}", "failed" if i in failing_runs else "passed", minutes=i) for i in range(20)]
    (test,) = flaky_tests(rows)
    assert test.score == 0.3 and (test.failures, test.passes, test.executions) == (6, 14, 20)
    assert test.low < 0.3 < test.high
    assert 0.1 < test.low and test.high < 0.55
    assert test.evidence == "6 of 20 runs of sha abc123def456 failed"
    assert test.git_shas == ["abc123def4567"] and test.runs == 20
    assert test.last_seen == T0 + timedelta(minutes=19)


def test_consistent_failure_is_broken_not_flaky() -> None:
    rows = [execution(f"r{i}", "failed") for i in range(10)]
    rows += [execution(f"r{i}", "passed", nodeid="tests/t.py::test_b", variant="v-b") for i in range(10)]
    assert flaky_tests(rows) == []


def test_failure_fixed_by_a_commit_is_not_flaky() -> None:
    rows = [execution(f"a{i}", "failed", sha="aaaa") for i in range(5)]
    rows += [execution(f"b{i}", "passed", sha="bbbb") for i in range(5)]
    assert flaky_tests(rows) == []


def test_rerun_pass_within_a_run_is_flaky() -> None:
    rows = [execution("r1", "failed", attempt=1, final=False), execution("r1", "passed", attempt=2, flaky=True),
            execution("r2", "passed")]
    (test,) = flaky_tests(rows)
    assert test.evidence == "rerun passed after failing in run r1"
    assert (test.failures, test.executions) == (1, 3)


def test_reruns_without_a_git_sha_group_by_run() -> None:
    rows = [execution("r1", "failed", sha=None), execution("r2", "passed", sha=None),  # code may differ
            execution("r3", "error", sha=None, attempt=1, final=False, variant="v-b", nodeid="t::b"),
            execution("r3", "passed", sha=None, attempt=2, variant="v-b", nodeid="t::b")]
    (test,) = flaky_tests(rows)
    assert test.nodeid == "t::b" and test.git_shas == []
    assert test.evidence == "rerun passed after failing in run r3"


def test_replicas_in_one_run_and_ignored_outcomes() -> None:
    rows = [execution("r1", "failed"), execution("r1", "passed"), execution("r1", "skipped"),
            execution("r1", "xfailed")]
    (test,) = flaky_tests(rows)
    assert test.executions == 2 and test.evidence == "1 of 2 executions of sha abc123def456 failed"
    assert flaky_tests([execution("r1", "failed"), execution("r1", "skipped"), execution("r1", "xfailed")]) == []


def test_score_pools_only_shas_where_both_outcomes_occur() -> None:
    rows = [execution(f"a{i}", "failed" if i < 2 else "passed", sha="aaaa") for i in range(8)]
    rows += [execution(f"b{i}", "passed", sha="bbbb") for i in range(50)]
    rows += [execution(f"c{i}", "failed", sha="cccc") for i in range(5)]
    (test,) = flaky_tests(rows)
    assert (test.failures, test.executions, test.git_shas) == (2, 8, ["aaaa"])


def test_more_evidence_ranks_first_and_min_executions_filters() -> None:
    few = [execution("r1", "failed", variant="v-few", nodeid="t::few"),
           execution("r2", "passed", variant="v-few", nodeid="t::few")]
    many = [execution(f"m{i}", "failed" if i % 2 else "passed", variant="v-many", nodeid="t::many")
            for i in range(40)]
    tests = flaky_tests(few + many)
    assert [t.nodeid for t in tests] == ["t::many", "t::few"]
    assert tests[0].score == tests[1].score == 0.5 and tests[0].low > tests[1].low
    assert [t.nodeid for t in flaky_tests(few + many, min_executions=3)] == ["t::many"]
    json.dumps([t.to_dict() for t in tests])
    assert isinstance(tests[0], FlakyTest)


@given(n=st.integers(1, 10_000), data=st.data())
def test_wilson_interval_contains_the_score(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


@given(k=st.integers(1, 50), n=st.integers(1, 50), factor=st.integers(2, 20))
def test_wilson_interval_narrows_with_more_executions(k: int, n: int, factor: int) -> None:
    k = min(k, n)
    low, high = wilson_interval(k, n)
    more_low, more_high = wilson_interval(k * factor, n * factor)
    assert more_high - more_low < high - low


def test_wilson_interval_of_nothing_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
