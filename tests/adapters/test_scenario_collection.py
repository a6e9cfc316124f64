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


def test_scenario_regex_runs_in_linear_time_and_refuses_backreferences() -> None:
    import threading

    from testfleet.adapters.http_scenarios import ScenarioError, scenario_from_dict

    scenario = scenario_from_dict({"steps": [{"request": {"path": "/"},
                                              "expect": {"regex": "(a+)+$"}}]}, source="s.yaml")
    pattern = scenario.steps[0].expect.regex
    out: list = []
    worker = threading.Thread(target=lambda: out.append(pattern.search("a" * 40 + "!")),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert out == [None], "the regex was still running after 20 s (backtracking engine?)"
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"steps": [{"request": {"path": "/"},
                                       "expect": {"regex": r"(a)\1"}}]}, source="s.yaml")
    assert info.value.place == "steps[0].expect.regex" and "backreferences" in str(info.value)
