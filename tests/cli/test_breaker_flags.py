"""`testfleet run --breakers/--no-breakers --breaker-KEY VALUE`: one flag per key of
[tool.testfleet.breakers], over the file's values; a bad value is one message naming the flag
and what was expected, exit 4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from execution.conftest import make_suite, run_cli

from testfleet.cli import app as cli_app
from testfleet.cli import run as cli_run
from testfleet.errors import SettingsError
from testfleet.execution.breakers import BreakerSettings
from testfleet.settings import load_settings

FLAGS = {  # flag -> (key, a valid value other than the default)
    "--breaker-cooldown": ("cooldown", "2.5"),
    "--breaker-consecutive-errors": ("consecutive_errors", "2"),
    "--breaker-failure-ratio": ("failure_ratio", "0.25"),
    "--breaker-window": ("window", "15"),
    "--breaker-min-calls": ("min_calls", "3"),
    "--breaker-half-open-probes": ("half_open_probes", "2"),
    "--breaker-quarantine-after": ("quarantine_after", "7"),
}


def _overrides(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """What `testfleet run ARGS` hands the settings, without running anything."""
    seen: list[Any] = []
    monkeypatch.setattr(cli_run, "execute", lambda request: seen.append(request) or 0)
    assert cli_app.main(["run", *args]) == 0
    return dict(seen[0].overrides)


def test_every_breaker_key_has_a_flag_and_the_flags_win_over_the_file(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.testfleet.breakers]\ncooldown = 30.0\nmin_calls = 20\n"
                                             "window = 90.0\n")
    args = ["--no-breakers"] + [part for flag, (_, value) in FLAGS.items() if flag != "--breaker-window"
                                for part in (flag, value)]
    settings, _ = load_settings([], _overrides(monkeypatch, *args), cwd=tmp_path)
    assert settings.breakers.enabled is False
    for flag, (key, value) in FLAGS.items():
        if flag != "--breaker-window":
            assert getattr(settings.breakers, key) == type(getattr(settings.breakers, key))(value), flag
    assert settings.breakers.window == 90.0  # no flag given: the file's value stays
    assert {key for key, _ in FLAGS.values()} | {"enabled"} == set(BreakerSettings.model_fields)

    settings, _ = load_settings([], _overrides(monkeypatch, "--breakers"), cwd=tmp_path)
    assert settings.breakers.enabled is True and settings.breakers.cooldown == 30.0


@pytest.mark.parametrize(("key", "value", "flag", "expected"), [
    ("breaker_cooldown", -1.0, "--breaker-cooldown", "greater than or equal to 0"),
    ("breaker_failure_ratio", 1.5, "--breaker-failure-ratio", "less than or equal to 1"),
    ("breaker_failure_ratio", 0.0, "--breaker-failure-ratio", "greater than 0"),
    ("breaker_window", 0.0, "--breaker-window", "greater than 0"),
    ("breaker_min_calls", 0, "--breaker-min-calls", "greater than or equal to 1"),
    ("breaker_consecutive_errors", -3, "--breaker-consecutive-errors", "greater than or equal to 1"),
    ("breaker_half_open_probes", 0, "--breaker-half-open-probes", "greater than or equal to 1"),
    ("breaker_quarantine_after", 0, "--breaker-quarantine-after", "greater than or equal to 1"),
])
def test_a_bad_breaker_value_names_its_flag_and_what_was_expected(tmp_path: Path, key: str, value: Any,
                                                                 flag: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings([], {key: value}, cwd=tmp_path)
    assert caught.value.place == flag and expected in str(caught.value)


@pytest.mark.parametrize(("args", "words"), [
    (["--breaker-failure-ratio", "1.5"], ["--breaker-failure-ratio", "less than or equal to 1"]),
    (["--breaker-cooldown", "soon"], ["--breaker-cooldown", "a valid number"]),
])
def test_run_refuses_a_bad_breaker_flag_with_exit_4(tmp_path: Path, args: list[str], words: list[str]) -> None:
    root = make_suite(tmp_path / "p", {"tests/test_a.py": "def test_ok():\n    pass\n"})
    ran = run_cli(root, "run", *args)
    assert ran.returncode == 4 and "Traceback" not in ran.output, ran.log
    assert all(word in ran.output for word in words), ran.log
    assert not (root / ".testfleet").exists()  # refused before anything ran


def test_the_collaboration_switches_go_over_the_files_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.testfleet.handoff]\nfactor = 5.0\n"
                                             "[tool.testfleet.specialise]\nenabled = true\n"
                                             "[tool.testfleet.helpers]\nenabled = ['memory']\n")
    settings, _ = load_settings([], _overrides(monkeypatch, "--no-handoff", "--no-specialise", "--no-helpers"),
                                cwd=tmp_path)
    assert settings.handoff.enabled is False and settings.handoff.factor == 5.0  # the rest of the table stays
    assert settings.specialise.enabled is False
    assert settings.helpers.enabled == []
    settings, _ = load_settings([], _overrides(monkeypatch, "--handoff", "--helpers"), cwd=tmp_path)
    assert settings.handoff.enabled is True and settings.specialise.enabled is True
    assert settings.helpers.enabled == ["memory"]  # --helpers keeps the helpers the file names
