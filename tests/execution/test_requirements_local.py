"""Requirements on the local backend: checked against what this machine offers."""

from __future__ import annotations

import pytest

from .conftest import by_nodeid, run_testfleet

pytestmark = pytest.mark.slow

SUITE = {
    "pyproject.toml": """
        [tool.testfleet]
        resources = { licence = 1.0 }
        labels = { zone = "a" }
        requirements = [{ pattern = "tests/test_rules.py", resources = { licence = 1 } },
                        { pattern = "tests/test_rules.py::test_ruled_gpu", gpus = 64 }]
        """,
    "tests/test_requires.py": """
        import pytest

        @pytest.mark.requires(gpus=64)
        def test_needs_gpus():
            pass

        @pytest.mark.requires(resources={"licence": 1}, labels={"zone": "a"})
        def test_offered_resource_and_label():
            pass

        @pytest.mark.requires(resources={"nothere": 1})
        def test_absent_resource():
            pass

        @pytest.mark.requires(labels={"zone": "b"})
        def test_other_zone():
            pass

        def test_plain():
            pass
        """,
    "tests/test_rules.py": """
        def test_ruled_ok():
            pass

        def test_ruled_gpu():
            pass
        """,
}


def test_unsatisfiable_tests_are_skipped_with_the_requirement_named(suite) -> None:
    root = suite(SUITE)
    ran = run_testfleet(root)
    assert ran.returncode == 0, ran.log
    results = {n: rs[-1] for n, rs in by_nodeid(ran.results()).items()}
    ran_ok = {"tests/test_requires.py::test_offered_resource_and_label", "tests/test_requires.py::test_plain",
              "tests/test_rules.py::test_ruled_ok"}
    assert {n for n, r in results.items() if r.outcome == "passed"} == ran_ok
    skipped = {n: r.message for n, r in results.items() if r.outcome == "skipped"}
    assert set(skipped) == {"tests/test_requires.py::test_needs_gpus", "tests/test_requires.py::test_absent_resource",
                            "tests/test_requires.py::test_other_zone", "tests/test_rules.py::test_ruled_gpu"}
    assert "gpus=64" in skipped["tests/test_requires.py::test_needs_gpus"]
    assert "nothere" in skipped["tests/test_requires.py::test_absent_resource"]
    assert "zone" in skipped["tests/test_requires.py::test_other_zone"]
    assert "gpus=64" in skipped["tests/test_rules.py::test_ruled_gpu"]  # from the settings rule
    assert ran.counts["skipped"] == 4 and ran.counts["passed"] == 3


def test_strict_requirements_turn_the_skips_into_errors(suite) -> None:
    root = suite(SUITE)
    ran = run_testfleet(root, "--strict-requirements")
    assert ran.returncode == 1, ran.log
    assert ran.counts.get("error") == 4 and ran.counts["passed"] == 3, ran.log
    assert "requires gpus=64" in ran.stdout


def test_a_malformed_requirement_is_a_usage_error(suite) -> None:
    root = suite({"tests/test_bad.py": """
        import pytest

        @pytest.mark.requires(memory="lots")
        def test_bad():
            pass
        """})
    ran = run_testfleet(root)
    assert ran.returncode == 4, ran.log
    assert "tests/test_bad.py::test_bad" in ran.stderr and "lots" in ran.stderr
