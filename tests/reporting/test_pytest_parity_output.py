"""What `testfleet run` prints and stores matches plain pytest on small suites written here.

Each test writes a suite, runs it with plain ``python -m pytest`` and with ``testfleet run``
(real worker processes, a real DuckDB store) and compares what a user reads. Test modules live
under ``tests/`` so that, as in a real project, the coordinator (started in the suite's root)
cannot import them: only the workers' pytest sessions put ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from execution.conftest import make_suite, outcome_counts, run_pytest, run_testfleet

pytestmark = pytest.mark.slow

ENUM_SUITE = {
    "tests/test_enums.py": """
        import enum
        import pytest

        class Level(enum.IntEnum):
            LOW = 1
            HIGH = 2

        class Mode(enum.StrEnum):
            FAST = "fast"
            SAFE = "safe"

        @pytest.mark.parametrize("level", list(Level))
        @pytest.mark.parametrize("mode", list(Mode))
        def test_combination(level, mode):
            assert isinstance(level, Level) and isinstance(mode, Mode)
            assert not (level is Level.HIGH and mode is Mode.FAST)
    """,
}


def test_enum_parameters_defined_in_the_test_module_run_like_pytest(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", ENUM_SUITE)
    plain = run_pytest(root)
    fleet = run_testfleet(root)
    assert outcome_counts(plain.output) == {"failed": 1, "passed": 3}, plain.log
    assert outcome_counts(fleet.output) == outcome_counts(plain.output), fleet.log
    assert fleet.returncode == plain.returncode == 1, fleet.log
    assert "Traceback" not in fleet.stderr, fleet.log
    # the enum member still reaches the test (its isinstance assertion passes)
    failed = [r.nodeid for r in fleet.results() if r.outcome == "failed"]
    assert failed == re.findall(r"^FAILED (\S+)", plain.stdout, re.MULTILINE), fleet.log


def test_data_the_coordinator_cannot_import_is_an_internal_error_naming_the_test(tmp_path: Path) -> None:
    # a marker argument is sent as it is: an enum of the test module cannot be read by the
    # coordinator, which must say so (exit 3, pytest's internal error) rather than crash
    root = make_suite(tmp_path / "suite", {"tests/test_zones.py": """
        import enum
        import pytest

        class Zone(enum.StrEnum):
            EU = "eu"

        @pytest.mark.requires(labels={"zone": Zone.EU})
        def test_zoned():
            pass

        def test_plain():
            pass
    """})
    fleet = run_testfleet(root)
    assert fleet.returncode == 3, fleet.log
    assert "Traceback" not in fleet.output, fleet.log
    message = [line for line in fleet.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(message) == 1, fleet.log
    assert "internal error" in message[0] and "tests/test_zones.py::test_zoned" in message[0], fleet.log
    assert "test_zones.Zone" in message[0] and "test_plain" not in message[0], fleet.log
    assert fleet.run().exit_code == 3
