"""One real run with the example plugin pip-installed: its operator drives a ruleset's rule,
its trigger alias reads its telemetry source's metric, its listener sees every result and its
reporter writes one row per result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from execution.conftest import make_suite, run_testfleet
from plugins.conftest import env_with
from testfleet.store.db import Store

pytestmark = pytest.mark.slow

SUITE = """
import testfleet
from testfleet import Int


@testfleet.explore(size=Int(1, 4096))
def test_size(size):
    assert 1 <= size <= 4096


def test_plain():
    pass
"""

RULES = """
rules:
  - mutation_name: Pow2
    target_parameter: size
    variation_type: powers_of_two
    min_value: 1
    max_value: 4096
    trigger_condition: "loadavg >= 0"
"""

POWERS = {2**k + d for k in range(13) for d in (-1, 0, 1)}


def test_a_run_uses_every_part_of_the_plugin(example_site: Path, tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_s.py": SUITE, "rules.yaml": RULES})
    log = tmp_path / "results.jsonl"
    ran = run_testfleet(project, "--explore", "8", "--seed", "3", "--ruleset", "rules.yaml",
                        "--report", "csv=out/results.csv", workers=1,
                        env=env_with(example_site) | {"TESTFLEET_EXAMPLE_RESULTS": str(log)})
    assert ran.returncode == 0, ran.log
    results = ran.results()
    with Store.open(ran.store, read_only=True) as db:
        rows = db.query("SELECT v.origin, v.params::VARCHAR FROM results r JOIN variants v USING "
                        "(variant_id) WHERE r.run_id = $1", [results[0].run_id])
    by_rule = [json.loads(params)["size"] for origin, params in rows if origin == "rule:Pow2"]
    assert by_rule and set(by_rule) <= POWERS, rows  # the plugin's operator made them
    # the trigger fired on the plugin's telemetry source: its metric is in the results' summaries
    assert any("plugin.example.load1" in r.telemetry for r in results)
    # the listener saw every result once, as the store has them
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((s["variant_id"], s["attempt"]) for s in seen) == sorted(
        (r.variant_id, r.attempt) for r in results)
    assert {s["run_id"] for s in seen} == {results[0].run_id}
    table = list(csv.DictReader((project / "out" / "results.csv").open()))
    assert len(table) == len(results) and "report: " in ran.stdout
