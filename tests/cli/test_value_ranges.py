"""Numbers that would reach numpy or DuckDB unchecked are refused at the door with one message
and the usage exit code (4 for `testfleet run`, 2 otherwise); so are spec versions that are not
numbers and negative durations; a bad setting in pyproject.toml is blamed on the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import make_suite, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.errors import SettingsError
from testfleet.settings import MAX_SEED, load_settings
from testfleet.specs.language import SpecError, specs

SUITE = {"tests/test_a.py": "def test_ok():\n    pass\n"}


def _refused(ran, code: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert ran.returncode == code, ran.log
    assert "Traceback" not in ran.output, ran.log
    for word in words:
        assert word in ran.output, ran.log


@pytest.mark.parametrize(("args", "words"), [
    (["run", "--seed", "-1"], ["--seed", "greater than or equal to 0"]),
    (["run", "--seed", str(10**27)], ["--seed", "less than or equal to"]),
])
def test_run_refuses_a_seed_out_of_range_as_a_usage_error(tmp_path: Path, args: list[str],
                                                          words: list[str]) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    ran = run_cli(root, *args)
    _refused(ran, 4, *words)
    assert not (root / ".testfleet").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["runs", "--limit", "-1"], ["--limit", "greater than or equal to 1"]),
    (["runs", "--limit", "0"], ["--limit", "greater than or equal to 1"]),
    (["flaky", "--runs", "-1"], ["--runs", "greater than or equal to 1"]),
    (["analyze", "--seed", "-1"], ["--seed"]),
    (["generate", "sample", "m.json", "-n", "99999999999999999999"], ["--count", "less than"]),
    (["generate", "sample", "m.json", "--seed", "-5"], ["--seed"]),
    (["space", "fuzz", "s.yaml", "-o", "out", "-s", "edge", "--seed", "-1"], ["--seed"]),
    (["space", "coverage", "s.yaml", "--variants", "v", "--min", "2"], ["--min", "less than"]),
])
def test_other_commands_refuse_numbers_out_of_range_with_exit_2(tmp_path: Path, args: list[str],
                                                               words: list[str]) -> None:
    ran = run_cli(tmp_path, *args)
    _refused(ran, 2, *words)
    assert "no runs in the store yet" not in ran.output


def test_a_bad_explore_setting_is_blamed_on_the_file_and_key_not_the_flag(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    (root / "pyproject.toml").write_text('[tool.testfleet]\nexplore = "forever"\n')
    ran = run_cli(root, "run")
    _refused(ran, 4, "pyproject.toml", "tool.testfleet.explore", "'forever'")
    assert "--explore" not in ran.stderr
    (root / "pyproject.toml").unlink()
    flagged = run_cli(root, "run", "--explore", "never")
    _refused(flagged, 4, "--explore", "'never'")


@settings(max_examples=60, deadline=None)
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_SEED + 1)))
def test_a_seed_setting_outside_0_to_2_63_is_a_settings_error(seed: int) -> None:
    with pytest.raises(SettingsError, match="--seed"):
        load_settings([], {"seed": seed})


@pytest.mark.parametrize(("spec", "place"), [
    ({"id": "a", "version": "two", "then": "passes"}, "version"),
    ({"id": "a", "version": -1, "then": "passes"}, "version"),
    ({"id": "a", "then": {"max_duration": -5}}, "max_duration"),
    ({"id": "a", "then": {"min_duration": float("nan")}}, "min_duration"),
    ({"id": "a", "then": {"duration": {"max": -0.5}}}, "duration"),
])
def test_a_spec_with_a_non_numeric_version_or_negative_duration_is_refused(
        spec: dict, place: str) -> None:
    with pytest.raises(SpecError) as info:
        specs([spec])
    assert (info.value.place or "").endswith(place)


def test_spec_versions_that_are_numbers_are_accepted() -> None:
    found = specs([{"id": "a", "version": 3, "then": {"max_duration": 0}},
                   {"id": "b", "version": "1.2", "then": "passes"}])
    assert [s.ref for s in found] == ["a@3", "b@1.2"]


def test_spec_lint_names_the_file_and_field_of_a_bad_version(tmp_path: Path) -> None:
    (tmp_path / "specs.yaml").write_text('specs:\n  - {id: a, version: "two", then: passes}\n')
    ran = run_cli(tmp_path, "spec", "lint", "specs.yaml")
    _refused(ran, 2, "specs.yaml", "version", "'two'")
