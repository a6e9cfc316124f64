"""`testfleet run` behaves like pytest on a suite that uses pytest's features.

One suite (~40 tests: fixtures of every scope, autouse and yield fixtures, parametrize with ids,
registered markers, skip/skipif/xfail/strict xfail, a failing fixture, a teardown error, Hypothesis
tests, captured output) is run once with plain pytest and once with ``testfleet run --workers 2``;
the outcomes, reports and store must agree with pytest's. Fixture set-up and tear-down are logged
to one file per process so that "session fixtures run once per worker" can be checked.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from execution.conftest import (
    by_nodeid,
    make_suite,
    outcome_counts,
    run_pytest,
    run_testfleet,
    summary_counts,
)
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

SUITE = {
    # Schemathesis (a test dependency of testfleet, not of this suite) autoloads a pytest plugin
    # that blanks Hypothesis's falsifying examples ("x=,"): this suite leaves it out
    "pytest.ini": """
        [pytest]
        addopts = -p no:schemathesis
        markers =
            smoke: quick checks
            network: talks to a pretend network
        """,
    "tests/conftest.py": """
        import os
        from pathlib import Path

        import pytest


        def record(event):
            folder = Path(os.environ["SUITE_EVENTS"])
            folder.mkdir(parents=True, exist_ok=True)
            worker = os.environ.get("TESTFLEET_WORKER", "main")
            with open(folder / f"{worker}-{os.getpid()}.log", "a") as handle:
                handle.write(event + "\\n")


        @pytest.fixture(scope="session")
        def recorder():
            return record


        @pytest.fixture(scope="session", autouse=True)
        def session_resource():
            record("setup session")
            yield {"pid": os.getpid()}
            record("teardown session")


        @pytest.fixture(scope="module")
        def module_resource(request):
            record("setup module")
            yield {"module": request.module.__name__}
            record("teardown module")


        @pytest.fixture(scope="class")
        def class_resource(request):
            record("setup class")
            yield request.cls.__name__
            record("teardown class")


        @pytest.fixture
        def function_resource(session_resource):
            record("setup function")
            yield session_resource["pid"]
            record("teardown function")


        @pytest.fixture(autouse=True)
        def stamp(request):
            request.node.stamped = True
            yield
            request.node.stamped = False


        @pytest.fixture
        def broken_fixture():
            raise RuntimeError("fixture setup failed on purpose")


        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown failed on purpose")
        """,
    "tests/pkg/__init__.py": "",
    "tests/pkg/conftest.py": """
        import pytest


        @pytest.fixture(scope="package")
        def package_resource(recorder):
            recorder("setup package")
            yield "pkg"
            recorder("teardown package")
        """,
    "tests/pkg/test_in_package.py": """
        def test_package_fixture(package_resource):
            assert package_resource == "pkg"


        def test_package_fixture_again(package_resource, module_resource):
            assert package_resource == "pkg"
            assert module_resource["module"].endswith("test_in_package")
        """,
    "tests/test_fixtures.py": """
        import os

        import pytest


        def test_session_fixture_belongs_to_this_process(session_resource):
            assert session_resource["pid"] == os.getpid()


        def test_function_fixture(function_resource):
            assert function_resource == os.getpid()


        def test_module_fixture(module_resource):
            assert module_resource["module"].endswith("test_fixtures")


        def test_autouse_fixture_ran(request):
            assert request.node.stamped is True


        class TestWithClassFixture:
            def test_one(self, class_resource):
                assert class_resource == "TestWithClassFixture"

            def test_two(self, class_resource, module_resource):
                assert class_resource == "TestWithClassFixture"


        def test_fixture_error(broken_fixture):
            pass


        def test_teardown_error(broken_teardown):
            pass
        """,
    "tests/test_outcomes.py": """
        import os
        import sys

        import pytest


        @pytest.mark.parametrize("n", range(16), ids=lambda n: f"case{n:02d}")
        def test_param(n):
            assert n * 2 == n + n


        @pytest.mark.parametrize(("a", "b"), [(1, 1), (2, 3)], ids=["equal", "different"])
        def test_param_ids(a, b):
            assert a == b


        @pytest.mark.smoke
        def test_marked():
            pass


        def test_skip():
            pytest.skip("not today")


        @pytest.mark.skipif(True, reason="always skipped")
        def test_skipif_true():
            pass


        @pytest.mark.skipif(sys.platform == "no-such-platform", reason="never skipped")
        def test_skipif_false():
            pass


        @pytest.mark.xfail(reason="known bug")
        def test_xfail_fails():
            assert 0


        @pytest.mark.xfail(reason="fixed since")
        def test_xfail_passes():
            pass


        @pytest.mark.xfail(strict=True, reason="must fail")
        def test_xfail_strict_passes():
            pass


        def test_prints():
            print("hello from test_prints")
            print(f"worker={os.environ.get('TESTFLEET_WORKER')} xdist={os.environ.get('PYTEST_XDIST_WORKER')}"
                  f" count={os.environ.get('PYTEST_XDIST_WORKER_COUNT')}")


        def test_fails_with_output():
            print("output of a failing test")
            assert 1 + 1 == 3
        """,
    "tests/test_property.py": """
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        # no health check: on a loaded CI machine a slow draw would fail the test for a reason
        # that is not the one it is about
        QUIET = list(HealthCheck)


        @settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=QUIET)
        @given(st.lists(st.integers()))
        def test_sorting_is_idempotent(xs):
            assert sorted(sorted(xs)) == sorted(xs)


        @settings(max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=QUIET)
        @given(st.integers(min_value=0, max_value=1000))
        def test_finds_counterexample(x):
            assert x < 500
        """,
}

EXPECTED = {"failed": 4, "passed": 30, "error": 2, "skipped": 2, "xfailed": 1, "xpassed": 1}
"""What plain pytest says about SUITE (checked, so that the comparisons are not vacuous)."""
TOTAL = 39

_RA_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+)")


def reported(output: str) -> dict[str, set[str]]:
    """pytest -rA's short summary: word -> node ids (skips are listed by location, not id)."""
    out: dict[str, set[str]] = {}
    for line in output.splitlines():
        match = _RA_LINE.match(line)
        if match:
            out.setdefault(match.group(1), set()).add(match.group(2))
    return out


def events(folder: Path) -> dict[str, Counter[str]]:
    """Per process log file ('gw0-1234', 'main-99'): how often each fixture event happened."""
    if not folder.exists():
        return {}
    return {p.stem: Counter(p.read_text().splitlines()) for p in sorted(folder.glob("*.log"))}


def junit_cases(path: Path) -> set[tuple[str, str, tuple[str, ...]]]:
    root = ET.parse(path).getroot()
    return {(case.get("classname"), case.get("name"),
             tuple(sorted(c.tag for c in case if c.tag in ("failure", "error", "skipped"))))
            for case in root.iter("testcase")}


def suite_totals(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = list(root.iter("testsuite"))
    return {key: sum(int(s.get(key, 0)) for s in suites) for key in ("failures", "errors", "skipped")}


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("parity")
    root = make_suite(base / "suite", SUITE)
    plain = run_pytest(root, "-rA", "--junitxml", base / "pytest.xml",
                       env={"SUITE_EVENTS": str(base / "events-pytest")})
    fleet = run_testfleet(root, "--json", base / "r.json", "--junitxml", base / "j.xml",
                          store=base / "fork.duckdb", env={"SUITE_EVENTS": str(base / "events-fork")})
    return SimpleNamespace(base=base, root=root, plain=plain, fleet=fleet)



def test_outcome_counts_and_exit_code_match_pytest(parity: SimpleNamespace) -> None:
    assert outcome_counts(parity.plain.output) == EXPECTED, parity.plain.log
    assert parity.plain.returncode == 1
    assert outcome_counts(parity.fleet.output) == outcome_counts(parity.plain.output), parity.fleet.log
    assert parity.fleet.returncode == parity.plain.returncode == 1, parity.fleet.log
    assert f"collected {TOTAL} items" in parity.fleet.stdout, parity.fleet.log


def test_json_report_parses_and_agrees_with_pytest(parity: SimpleNamespace) -> None:
    report = json.loads((parity.base / "r.json").read_text())
    assert report["exitcode"] == parity.fleet.returncode == 1
    summary = report["summary"]
    assert summary["total"] == TOTAL and summary["collected"] == TOTAL, summary
    plain = outcome_counts(parity.plain.output)
    for word in ("failed", "skipped", "xfailed", "xpassed", "error"):
        assert summary.get(word, 0) == plain[word], (word, summary)
    tests = {t["nodeid"]: t["outcome"] for t in report["tests"]}
    assert len(report["tests"]) == TOTAL == len(tests)
    words = reported(parity.plain.stdout)
    ran = set().union(*words.values())  # every test pytest named (all but the two skips)
    assert {n for n, o in tests.items() if o != "skipped"} == ran
    assert {n for n, o in tests.items() if o == "failed"} == words["FAILED"]
    assert {n for n, o in tests.items() if o == "xfailed"} == words["XFAIL"]
    assert {n for n, o in tests.items() if o == "xpassed"} == words["XPASS"]
    assert "tests/test_outcomes.py::test_param[case07]" in tests
    assert tests["tests/test_outcomes.py::test_param_ids[different]"] == "failed"
    assert tests["tests/test_outcomes.py::test_xfail_strict_passes"] == "failed"


def test_junit_report_matches_pytests_own(parity: SimpleNamespace) -> None:
    ours, theirs = parity.base / "j.xml", parity.base / "pytest.xml"
    assert junit_cases(ours) == junit_cases(theirs)
    assert suite_totals(ours) == suite_totals(theirs)


def test_session_fixtures_run_once_per_worker_and_every_teardown_runs(parity: SimpleNamespace) -> None:
    plain = events(parity.base / "events-pytest")
    assert len(plain) == 1, plain  # pytest: one process
    fleet = events(parity.base / "events-fork")
    workers = {r.worker for r in parity.fleet.results()}
    # one log per worker process (the zygote that collected runs no fixture)
    assert {name.split("-")[0] for name in fleet} == workers, fleet
    assert len(fleet) == len(workers)
    for log in [*plain.values(), *fleet.values()]:
        assert log["setup session"] == 1 and log["teardown session"] == 1, log
        for scope in ("package", "module", "class", "function"):
            assert log[f"setup {scope}"] == log[f"teardown {scope}"], (scope, log)
    # the package/class/module fixtures were used at all, by pytest and by the fleet
    for scope in ("package", "module", "class", "function"):
        assert sum(log[f"setup {scope}"] for log in fleet.values()) >= 1, scope
    assert sum(log["setup function"] for log in fleet.values()) == 1


def test_both_workers_get_work(parity: SimpleNamespace) -> None:
    results = parity.fleet.results()
    assert len(by_nodeid(results)) == TOTAL
    assert {r.worker for r in results} == {"gw0", "gw1"}


def test_captured_output_and_worker_variables_reach_the_store(parity: SimpleNamespace) -> None:
    results = {r.nodeid: r for r in parity.fleet.results(final_only=True)}
    printed = results["tests/test_outcomes.py::test_prints"]
    assert "hello from test_prints" in printed.stdout
    worker = printed.worker
    assert re.fullmatch(r"gw\d+", worker)
    assert f"worker={worker} xdist={worker} count=2" in printed.stdout
    failing = results["tests/test_outcomes.py::test_fails_with_output"]
    assert "output of a failing test" in failing.stdout
    assert "assert (1 + 1) == 3" in failing.longrepr or "assert 2 == 3" in failing.longrepr
    # and the console shows it under the failure, as pytest does
    assert "Captured stdout" in parity.fleet.stdout
    assert "output of a failing test" in parity.fleet.stdout


def test_hypothesis_failures_show_the_falsifying_example(parity: SimpleNamespace) -> None:
    assert "x=500" in parity.plain.stdout, parity.plain.stdout[-3000:]
    result = {r.nodeid: r for r in parity.fleet.results(final_only=True)}[
        "tests/test_property.py::test_finds_counterexample"]
    assert result.outcome == "failed"
    # Hypothesis words it "Falsifying example" or, in newer releases, "Failing test case": the
    # stored traceback must carry whichever the installed Hypothesis prints under plain pytest.
    phrase = next(p for p in ("Falsifying example", "Failing test case") if p in parity.plain.stdout)
    assert phrase in result.longrepr and "x=500" in result.longrepr


def test_spawn_start_method_gives_the_same_outcomes(parity: SimpleNamespace) -> None:
    spawned = run_testfleet(parity.root, "--start-method", "spawn", store=parity.base / "spawn.duckdb",
                            env={"SUITE_EVENTS": str(parity.base / "events-spawn")})
    assert spawned.returncode == 1, spawned.log
    assert outcome_counts(spawned.output) == outcome_counts(parity.plain.output), spawned.log
    log = events(parity.base / "events-spawn")
    assert {name.split("-")[0] for name in log} == {r.worker for r in spawned.results()}
    for counts in log.values():
        assert counts["setup session"] == counts["teardown session"] == 1, counts


def test_collect_only_after_dashdash_prints_pytests_collection(parity: SimpleNamespace) -> None:
    store = parity.base / "co.duckdb"
    ran = run_testfleet(parity.root, "--", "--collect-only", store=store,
                        env={"SUITE_EVENTS": str(parity.base / "events-co")})
    plain = run_pytest(parity.root, "--collect-only", env={"SUITE_EVENTS": str(parity.base / "events-co-pytest")})
    assert ran.returncode == 0 == plain.returncode, ran.log
    tree = [line for line in plain.stdout.splitlines() if line.strip().startswith("<")]
    assert len(tree) > TOTAL  # the Dir/Package/Module/Class nodes and every Function
    assert [line for line in ran.output.splitlines() if line.strip().startswith("<")] == tree, ran.log
    assert "<Function test_param[case03]>" in ran.output
    assert f"{TOTAL} tests collected" in ran.output
    assert not (parity.base / "events-co").exists()  # nothing ran


def test_pytest_usage_error_after_dashdash_exits_4_and_records_nothing(parity: SimpleNamespace) -> None:
    store = parity.base / "usage.duckdb"
    ran = run_testfleet(parity.root, "--", "--no-such-flag", store=store)
    assert ran.returncode == 4, ran.log
    assert "unrecognized arguments: --no-such-flag" in ran.output, ran.log
    if store.exists():
        with Store.open(store, read_only=True) as db:
            assert db.list_runs() == []


def test_module_level_skips_are_counted_like_pytest(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {
        "tests/test_skipped_module.py": """
            import pytest

            pytest.skip("needs a GPU", allow_module_level=True)


            def test_never_collected():
                pass
            """,
        "tests/test_ok.py": "def test_ok():\n    pass\n",
    })
    plain = run_pytest(root, "--junitxml", tmp_path / "pytest.xml")
    ran = run_testfleet(root, "--junitxml", tmp_path / "j.xml")
    assert outcome_counts(plain.output) == {"passed": 1, "skipped": 1}, plain.log
    assert ran.returncode == plain.returncode == 0, ran.log
    assert outcome_counts(ran.output) == {"passed": 1, "skipped": 1}, ran.log
    assert suite_totals(tmp_path / "j.xml") == suite_totals(tmp_path / "pytest.xml")


def test_warnings_are_reported_like_pytest(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", {
        "tests/test_warns.py": """
            import warnings


            def test_deprecated_call():
                warnings.warn(DeprecationWarning("old_api() is deprecated, use new_api()"))


            def test_quiet():
                pass
            """,
    })
    plain = run_pytest(root)
    ran = run_testfleet(root)
    assert summary_counts(plain.output) == {"passed": 2, "warnings": 1}, plain.log
    assert "old_api() is deprecated" in plain.stdout
    assert ran.returncode == 0, ran.log
    assert summary_counts(ran.output) == summary_counts(plain.output), ran.log
    assert "old_api() is deprecated" in ran.stdout, ran.log
