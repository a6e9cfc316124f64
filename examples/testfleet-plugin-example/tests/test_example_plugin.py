"""The example plugin, as testfleet sees it once installed (``pip install`` it first)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from testfleet.model import Outcome, Result
from testfleet.mutation.operators import propose
from testfleet.mutation.rules import loads_ruleset
from testfleet.plugins import registry
from testfleet.space.dimensions import Int
from testfleet_plugin_example import LoadProbe, ResultLog, write_csv

RULE = """
rules:
  - mutation_name: Pow2
    target_parameter: size
    variation_type: powers_of_two
    min_value: 1
    max_value: 1024
    trigger_condition: "loadavg >= 0"
"""


def _result(nodeid: str, outcome: Outcome = Outcome.passed) -> Result:
    return Result(run_id="r1", variant_id=f"v-{nodeid}", case_id="c", nodeid=nodeid, outcome=outcome,
                  duration=0.25, worker="gw0")


def test_the_entry_point_is_found_and_names_its_distribution() -> None:
    info = {p.name: p for p in registry().plugins()}["example"]
    assert (info.distribution, info.version, info.builtin) == ("testfleet-plugin-example", "0.1.0", False)
    assert registry().provided()["example"]["testfleet_add_mutation_operators"] == ["powers_of_two"]


def test_a_ruleset_names_the_operator_and_the_trigger_alias() -> None:
    rule = loads_ruleset(RULE).rules[0]
    assert rule.trigger is not None and rule.trigger.reads == {"loadavg": ("plugin.example.load1", "max")}
    assert rule.trigger.holds({"plugin.example.load1": {"max": 0.5}})
    assert not rule.trigger.holds({})  # a metric it did not see: the rule does not fire
    values = propose(rule, Int(1, 4096), 100, np.random.default_rng(0), count=6)
    assert values == [128, 64, 256, 32, 512, 16]  # nearest power first, then outwards


def test_the_probe_reads_the_load_average() -> None:
    reading = LoadProbe().read()
    assert set(reading) == {"load1"} and reading["load1"] >= 0


def test_the_csv_reporter_writes_one_row_per_result(tmp_path: Path) -> None:
    outcome = SimpleNamespace(results=[_result("t.py::a"), _result("t.py::b", Outcome.failed)])
    path = write_csv(str(tmp_path / "out" / "r.csv"), SimpleNamespace(run_id="r1"), outcome)
    rows = list(csv.DictReader(path.open()))
    assert [(r["nodeid"], r["outcome"]) for r in rows] == [("t.py::a", "passed"), ("t.py::b", "failed")]


def test_the_listener_appends_each_result(tmp_path: Path) -> None:
    log = ResultLog(str(tmp_path / "log.jsonl"), "r1")
    for done, nodeid in enumerate(["t.py::a", "t.py::b"], 1):
        log.on_result(_result(nodeid), done, 2)
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(line["nodeid"], line["done"]) for line in lines] == [("t.py::a", 1), ("t.py::b", 2)]
