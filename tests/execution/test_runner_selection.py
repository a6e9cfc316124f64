"""Which tests run, in which order, on which worker: -k, -m, -x, --maxfail, --lf, --ff,
slowest-first, --dist, and the same choices made in ``[tool.testfleet]``."""

from __future__ import annotations

import pytest

from execution.conftest import (
    by_nodeid,
    outcome_counts,
    run_pytest,
    run_testfleet,
    start_order,
)

pytestmark = pytest.mark.slow

SELECTABLE = {
    "pytest.ini": """
        [pytest]
        markers =
            smoke: quick checks
            db: needs the database
        """,
    "tests/test_users.py": """
        import pytest


        @pytest.mark.smoke
        def test_create_user():
            pass


        @pytest.mark.db
        def test_delete_user():
            pass


        @pytest.mark.smoke
        @pytest.mark.db
        def test_login_user():
            pass


        class TestAdmin:
            def test_create_admin(self):
                pass

            @pytest.mark.smoke
            def test_admin_login(self):
                pass
        """,
    "tests/test_orders.py": """
        import pytest


        @pytest.mark.parametrize("size", ["small", "large"])
        def test_create_order(size):
            pass


        @pytest.mark.db
        def test_cancel_order():
            pass
        """,
}


@pytest.mark.parametrize(("option", "expression", "expected"), [
    ("-k", "create and not admin", {"tests/test_users.py::test_create_user",
                                    "tests/test_orders.py::test_create_order[small]",
                                    "tests/test_orders.py::test_create_order[large]"}),
    ("-m", "smoke and not db", {"tests/test_users.py::test_create_user",
                                "tests/test_users.py::TestAdmin::test_admin_login"}),
])
def test_keyword_and_marker_selection_match_pytest(suite, option: str, expression: str,
                                                   expected: set[str]) -> None:
    root = suite(SELECTABLE)
    ran = run_testfleet(root, option, expression)
    plain = run_pytest(root, option, expression)
    deselected = 8 - len(expected)
    assert outcome_counts(plain.output) == {"passed": len(expected), "deselected": deselected}
    assert ran.returncode == 0, ran.log
    assert outcome_counts(ran.output) == outcome_counts(plain.output), ran.log
    assert {r.nodeid for r in ran.results()} == expected
    assert ran.run().deselected == deselected


SLOWISH = "".join(f"""

def test_slowish_{i:02d}():
    time.sleep(0.2)
""" for i in range(37))


SESSION_LOG = {
    "tests/conftest.py": """
        import os
        from pathlib import Path

        import pytest


        @pytest.fixture(scope="session", autouse=True)
        def service():
            yield
            folder = Path(__file__).parent.parent / "torn-down"
            folder.mkdir(exist_ok=True)
            (folder / os.environ["TESTFLEET_WORKER"]).touch()
        """,
}


def test_exitfirst_stops_the_run_at_the_first_failure(suite) -> None:
    root = suite({**SESSION_LOG, "tests/test_many.py": "import time\n\n\ndef test_00_fails_early():\n"
                  "    assert False\n" + SLOWISH + "\n\ndef test_zz_fails_late():\n    assert False\n"})
    ran = run_testfleet(root, "-x")
    assert ran.returncode == 1, ran.log
    results = by_nodeid(ran.results())
    assert results["tests/test_many.py::test_00_fails_early"][0].outcome == "failed"
    assert len(results) < 39, f"{len(results)} of 39 tests ran despite -x"
    assert "tests/test_many.py::test_zz_fails_late" not in results
    assert outcome_counts(ran.output).get("failed") == 1, ran.log
    assert "stopping after 1 failure" in ran.output
    # every worker that ran a test still tore its session fixtures down
    workers = {r.worker for r in ran.results()}
    assert workers and sorted(p.name for p in (root / "torn-down").iterdir()) == sorted(workers)


def test_exitfirst_still_reports_teardown_errors_like_pytest(suite) -> None:
    # The module fixture is alive when -x stops the run; its teardown fails. pytest reports that
    # error ("1 failed, 1 error"); so must testfleet.
    root = suite({"tests/test_module.py": """
        import pytest


        @pytest.fixture(scope="module")
        def connection():
            yield "db"
            raise RuntimeError("could not close the connection")
        """ + "".join(f"""

        def test_{i}(connection):
            assert {i} != 0
        """ for i in range(6))})
    plain = run_pytest(root, "-x")
    assert outcome_counts(plain.output) == {"failed": 1, "error": 1}, plain.log
    ran = run_testfleet(root, "-x", workers=1)
    assert ran.returncode == 1, ran.log
    assert outcome_counts(ran.output) == outcome_counts(plain.output), ran.log
    assert "could not close the connection" in ran.stdout, ran.log


def test_maxfail_stops_after_that_many_failures(suite) -> None:
    root = suite({"tests/test_many.py": "import time\n\n\ndef test_00_fails():\n    assert False\n\n\n"
                                        "def test_01_fails():\n    assert False\n"
                                        + SLOWISH + "\n\ndef test_zz_fails_late():\n    assert False\n"})
    ran = run_testfleet(root, "--maxfail", "2")
    assert ran.returncode == 1, ran.log
    results = by_nodeid(ran.results())
    assert {n for n, rs in results.items() if rs[-1].outcome == "failed"} == {
        "tests/test_many.py::test_00_fails", "tests/test_many.py::test_01_fails"}
    assert len(results) < 40
    assert "stopping after 2 failures" in ran.output, ran.log


LAST_FAILED = {
    "tests/test_lf.py": """
        from pathlib import Path

        FIXED = Path(__file__).parent / "fixed"


        def test_a():
            pass


        def test_b_broken():
            assert FIXED.exists()


        def test_c():
            pass


        def test_d_broken():
            assert FIXED.exists()


        def test_e():
            pass
        """,
}


def test_last_failed_reruns_only_the_failures_until_they_pass(suite) -> None:
    root = suite(LAST_FAILED)
    broken = {"tests/test_lf.py::test_b_broken", "tests/test_lf.py::test_d_broken"}
    first = run_testfleet(root)
    assert first.returncode == 1 and outcome_counts(first.output) == {"failed": 2, "passed": 3}, first.log

    again = run_testfleet(root, "--lf")
    assert again.returncode == 1, again.log
    assert {r.nodeid for r in again.results()} == broken
    assert outcome_counts(again.output) == {"failed": 2, "deselected": 3}, again.log
    assert "rerun previous 2 failures" in again.output

    (root / "tests" / "fixed").touch()
    fixed = run_testfleet(root, "--lf")
    assert fixed.returncode == 0, fixed.log
    assert {r.nodeid for r in fixed.results()} == broken
    assert outcome_counts(fixed.output) == {"passed": 2, "deselected": 3}, fixed.log

    nothing_failed = run_testfleet(root, "--lf")
    assert nothing_failed.returncode == 0, nothing_failed.log
    assert len(nothing_failed.results()) == 5
    assert outcome_counts(nothing_failed.output) == {"passed": 5}
    assert "no previously failed tests" in nothing_failed.output


FAILED_FIRST = {
    "tests/test_order.py": """
        import time
        from pathlib import Path

        BROKEN = Path(__file__).parent / "broken"


        def test_a():
            time.sleep(0.05)


        def test_b():
            time.sleep(0.05)


        def test_c():
            time.sleep(0.05)


        def test_d():
            time.sleep(0.05)


        def test_last_and_quickest():
            assert not BROKEN.exists()
        """,
}


def test_failed_first_runs_last_runs_failure_before_the_rest(suite) -> None:
    # The failing test is the last collected and the quickest, so neither collection order nor
    # slowest-first would put it first: only failed-first does.
    root = suite(FAILED_FIRST)
    (root / "tests" / "broken").touch()
    last = "tests/test_order.py::test_last_and_quickest"
    first = run_testfleet(root, workers=1)
    assert first.returncode == 1, first.log
    assert start_order(first.results())[-1] == last

    default = run_testfleet(root, "-v", workers=1)
    assert default.returncode == 1, default.log
    assert start_order(default.results())[0] == last
    verbose = [line for line in default.stdout.splitlines() if "tests/test_order.py::" in line]
    assert last in verbose[0], default.log

    explicit = run_testfleet(root, "--ff", workers=1)
    assert start_order(explicit.results())[0] == last

    not_first = run_testfleet(root, "--no-ff", workers=1)
    assert start_order(not_first.results())[-1] == last


def test_slowest_tests_by_history_start_first(suite) -> None:
    root = suite({
        "tests/test_durations.py": "import time\n\n"
        + "".join(f"\ndef test_quick_{i}():\n    pass\n\n" for i in range(3))
        + "\ndef test_slow():\n    time.sleep(1)\n\n"
        + "".join(f"\ndef test_quick_{i}():\n    pass\n\n" for i in range(3, 6)),
    })
    first = run_testfleet(root, workers=1)
    assert first.returncode == 0, first.log
    assert start_order(first.results())[3] == "tests/test_durations.py::test_slow"  # collection order

    second = run_testfleet(root, workers=1)
    assert second.returncode == 0, second.log
    assert start_order(second.results())[0] == "tests/test_durations.py::test_slow"


GROUPED = {
    f"tests/test_file{f}.py": "import time\n\n" + "".join(f"""

class TestGroup{c}:
""" + "".join(f"""    def test_{t}(self):
        time.sleep(0.02)

""" for t in range(3)) for c in range(2)) + "".join(f"""
def test_loose_{t}():
    time.sleep(0.02)

""" for t in range(2))
    for f in range(4)
}


def workers_of(results, key) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for result in results:
        out.setdefault(key(result.nodeid), set()).add(result.worker)
    return out


def test_dist_loadfile_keeps_each_file_on_one_worker(suite) -> None:
    root = suite(GROUPED)
    ran = run_testfleet(root, "--dist", "loadfile")
    assert ran.returncode == 0, ran.log
    results = ran.results()
    assert len(results) == 32
    per_file = workers_of(results, lambda nodeid: nodeid.split("::")[0])
    assert len(per_file) == 4
    assert all(len(workers) == 1 for workers in per_file.values()), per_file
    assert {r.worker for r in results} == {"gw0", "gw1"}  # grouped, yet shared out


def test_dist_loadscope_keeps_each_class_on_one_worker(suite) -> None:
    root = suite(GROUPED)
    ran = run_testfleet(root, "--dist", "loadscope")
    assert ran.returncode == 0, ran.log
    results = ran.results()
    classes = workers_of([r for r in results if "::TestGroup" in r.nodeid],
                         lambda nodeid: nodeid.rsplit("::", 1)[0])
    assert len(classes) == 8
    assert all(len(workers) == 1 for workers in classes.values()), classes
    assert {r.worker for r in results} == {"gw0", "gw1"}


SETTINGS_SUITE = {
    "pyproject.toml": """
        [tool.testfleet]
        workers = 1
        reruns = 1
        junitxml = "reports/junit.xml"
        """,
    "tests/test_flaky.py": """
        from pathlib import Path

        STATE = Path(__file__).parent / "failed-once"


        def test_flaky():
            if not STATE.exists():
                STATE.touch()
                assert False, "first attempt fails"


        def test_fine():
            pass
        """,
}


def test_settings_from_pyproject_are_honoured_and_flags_override_them(suite) -> None:
    root = suite(SETTINGS_SUITE)
    tests = root / "tests"
    # Run from a subfolder: the settings file is found upwards, and its junitxml path is
    # relative to the file, not to the current directory.
    ran = run_testfleet(tests, store=root / "s.duckdb", workers=None)
    assert ran.returncode == 0, ran.log
    assert ran.run().workers == 1
    assert {r.worker for r in ran.results()} == {"gw0"}
    flaky = by_nodeid(ran.results())["tests/test_flaky.py::test_flaky"]
    assert [r.outcome for r in flaky] == ["failed", "passed"] and flaky[-1].flaky  # reruns = 1
    assert (root / "reports" / "junit.xml").is_file()
    assert not (tests / "reports").exists()

    (tests / "failed-once").unlink()
    (root / "reports" / "junit.xml").unlink()
    flags = run_testfleet(tests, "--reruns", "0", "--junitxml", "here.xml", store=root / "s.duckdb",
                          workers=2)
    assert flags.returncode == 1, flags.log
    assert flags.run().workers == 2
    assert [r.outcome for r in by_nodeid(flags.results())["tests/test_flaky.py::test_flaky"]] == ["failed"]
    assert (tests / "here.xml").is_file()  # a flag's path is relative to the current directory
    assert not (root / "reports" / "junit.xml").exists()
