"""A malformed scenario file is one collection error line, whatever part of it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import make_suite, run_testfleet

BAD_CONSTRAINT = """
name: bad
params:
  n: {type: int, min: 1, max: 5}
constraints:
  - "n >"
steps:
  - request: GET /x
"""


@pytest.mark.parametrize("constraint", ["n >", "m > 1", "n + " * 200 + "n > 1"])
def test_bad_constraint_in_a_scenario_is_one_line_not_a_traceback(tmp_path: Path,
                                                                     constraint: str) -> None:
    text = BAD_CONSTRAINT.replace('"n >"', f'"{constraint}"')
    suite = make_suite(tmp_path / "suite", {"bad.scenario.yaml": text})
    ran = run_testfleet(suite, workers=1)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 2, out
    assert "bad.scenario.yaml [constraints[0]" in out
    assert "space.py" not in out and "Traceback" not in out and "raise SpaceError" not in out
