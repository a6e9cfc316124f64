"""``testfleet plugins`` as a user runs it, with the example plugin pip-installed, and with a
plugin that cannot be imported (``testfleet plugins`` and ``testfleet run`` both exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

from execution.conftest import make_suite, run_cli
from plugins.conftest import EXAMPLE, env_with, make_dist


def test_plugins_lists_each_plugin_with_its_distribution_and_providers(example_site: Path,
                                                                        tmp_path: Path) -> None:
    listed = run_cli(tmp_path, "plugins", "--json", env=env_with(example_site))
    assert listed.returncode == 0, listed.log
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    example = rows["example"]
    assert (example["distribution"], example["version"], example["builtin"]) == (
        "testfleet-plugin-example", "0.1.0", False)
    assert example["provides"]["testfleet_add_mutation_operators"] == ["powers_of_two"]
    assert example["provides"]["testfleet_add_reporters"] == ["csv"]
    assert "testfleet_run_listener" in example["provides"]
    builtin = rows["testfleet.mutation.operators"]
    assert builtin["builtin"] and "range" in builtin["provides"]["testfleet_add_mutation_operators"]

    table = run_cli(tmp_path, "plugins", "--no-builtins", env=env_with(example_site))
    assert table.returncode == 0, table.log
    assert "testfleet-plugin-example 0.1.0" in table.stdout
    assert "mutation operators: powers_of_two" in table.stdout and "reporters: csv" in table.stdout
    assert "testfleet.mutation.operators" not in table.stdout
    assert "1 plugin installed" in table.stdout


def test_a_broken_plugin_stops_plugins_and_run_with_one_message(tmp_path: Path) -> None:
    site = make_dist(tmp_path / "site", "broken-dist", "tfplug_cli_broken",
                     "raise RuntimeError('half-installed')\n", entry="broken")
    project = make_suite(tmp_path / "p", {"test_a.py": "def test_a():\n    pass\n"})
    for args in (["plugins"], ["run", "--store", str(project / "s.duckdb"), "--workers", "1"]):
        ran = run_cli(project, *args, env=env_with(site))
        assert ran.returncode == 4, ran.log
        assert "Traceback" not in ran.output
        error = [line for line in ran.stderr.splitlines() if line.startswith("ERROR:")]
        assert len(error) == 1, ran.log
        assert "broken (broken-dist 1.0)" in error[0] and "broken = tfplug_cli_broken" in error[0]
        assert "RuntimeError: half-installed" in error[0]
    assert not (project / "s.duckdb").exists()  # refused before the store was touched


def test_the_example_packages_own_tests_pass(example_site: Path, tmp_path: Path) -> None:
    from execution.conftest import run_pytest

    ran = run_pytest(tmp_path, str(EXAMPLE / "tests"), "-q", "--rootdir", str(tmp_path),
                     env=env_with(example_site))
    assert ran.returncode == 0, ran.log
    assert ran.counts == {"passed": 5}
