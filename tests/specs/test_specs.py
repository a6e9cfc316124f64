"""Specs: the language and its errors, verdicts on planted results, lint, and the CLI against a
real DuckDB store (hand-written results) and a real `testfleet run`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from execution.conftest import make_suite, run_cli, run_testfleet
from hypothesis import given, settings
from hypothesis import strategies as st
from specs.tables import table_from_rows

from testfleet.model import Case, Outcome, Result, Run, Variant
from testfleet.space import Choice, Int, Space
from testfleet.specs import (
    HOLDS,
    UNTESTED,
    VIOLATED,
    SpecError,
    check,
    lint,
    specs,
)
from testfleet.store.db import Store

ORDERS = "tests/test_orders.py::test_order"


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i, (mode, threads) in enumerate([("off", 2), ("off", 8), ("lru", 2), ("lru", 8)] * 5):
        slow = mode == "off" and threads == 8
        rows.append({"variant_id": f"v{i % 4}", "nodeid": ORDERS, "markers": ["orders"],
                     "params": {"cache.mode": mode, "threads": threads},
                     "outcome": "failed" if slow else "passed",
                     "duration": 0.9 if slow else 0.1,
                     "message": "TimeoutError: took 900 ms" if slow else ""})
    rows.append({"variant_id": "h", "nodeid": "tests/test_health.py::test_ok", "params": {},
                 "outcome": "passed", "duration": 0.01})
    return rows


def test_verdicts_on_planted_results() -> None:
    table = table_from_rows(_rows())
    found = {v.spec.id: v for v in check(specs([
        {"id": "lru-passes", "given": "cache.mode == 'lru'", "when": "tests/test_orders.py::*",
         "then": "passes"},
        {"id": "off-passes", "version": 3, "given": "cache.mode == 'off'",
         "when": {"markers": ["orders"]}, "then": {"outcome": "passes", "max_duration": 0.5}},
        {"id": "off-many-threads-times-out", "given": "cache.mode == 'off' and threads > 4",
         "then": {"outcome": "fails", "message": "Timeout"}},
        {"id": "nothing-matches", "given": "threads > 100", "then": "passes"},
        {"id": "health-fast", "when": "tests/test_health.py::*", "then": {"max_duration": 0.05}},
        {"id": "latency", "when": ORDERS, "then": {"metrics": {"latency_p95_ms": 200}}},
    ]), table)}
    assert (found["lru-passes"].status, found["lru-passes"].matching) == (HOLDS, 10)
    off = found["off-passes"]
    assert (off.status, off.matching, off.violations) == (VIOLATED, 10, 5)
    assert {e.variant_id for e in off.examples} == {"v1"}
    assert off.examples[0].params == {"cache.mode": "off", "threads": 8}
    assert "outcome is not passes" in off.examples[0].why
    assert found["off-many-threads-times-out"].status == HOLDS
    assert found["nothing-matches"].status == UNTESTED
    assert found["health-fast"].status == HOLDS
    assert found["latency"].status == UNTESTED and "latency_p95_ms" in found["latency"].note


def test_message_and_duration_violations_are_explained() -> None:
    table = table_from_rows(_rows())
    (verdict,) = check(specs([{"id": "msg", "given": "threads == 8 and cache.mode == 'off'",
                               "then": {"outcome": "fails", "message": "MemoryError"}}]), table)
    assert verdict.status == VIOLATED and verdict.examples[0].why.startswith("message")
    (verdict,) = check(specs([{"id": "dur", "then": {"duration": {"min": 0.05, "max": 1}}}]),
                       table)
    assert verdict.violations == 1 and "duration" in verdict.examples[0].why


@pytest.mark.parametrize(("item", "place", "text"), [
    ({"id": "a b", "then": "passes"}, "specs[0].id", "malformed"),
    ({"id": "x", "then": "explodes"}, "specs[0] (x).then.outcome", "unknown outcome"),
    ({"id": "x", "given": "threads >", "then": "passes"}, "specs[0] (x).given", "unexpected"),
    ({"id": "x", "then": {"message": "("}}, "specs[0] (x).then.message", "bad message pattern"),
    ({"id": "x"}, "specs[0] (x).then", "needs a 'then'"),
    ({"id": "x", "then": {"max_duration": "fast"}}, "specs[0] (x)", "bad bound"),
    ({"id": "x", "then": "passes", "whenn": "a"}, "specs[0]", "unknown keys whenn"),
])
def test_bad_specs_name_the_field(item: dict, place: str, text: str) -> None:
    with pytest.raises(SpecError) as info:
        specs([item])
    assert text in str(info.value)
    assert (info.value.place or "").startswith(place)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(SpecError, match="appears twice"):
        specs([{"id": "a", "then": "passes"}, {"id": "a", "then": "fails"}])


_JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=5),
              st.sampled_from(["passes", "fails", "x > 1", "a == 'b'", "*", "id", "then"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["id", "version", "given", "when", "then", "outcome", "message",
                         "max_duration", "metrics", "nodeid", "markers", "specs", "min", "max"]),
        inner, max_size=5)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(data=_JUNK)
def test_any_spec_file_content_is_specs_or_a_spec_error(data: Any) -> None:
    from testfleet.specs.language import specs_from_data
    try:
        specs_from_data(data, source="s.yaml")
    except SpecError as exc:
        assert exc.source == "s.yaml"


def test_lint_finds_contradictions_and_specs_nothing_matches() -> None:
    found = lint(specs([
        {"id": "a", "given": "threads > 4", "when": "tests/test_x.py::*", "then": "passes"},
        {"id": "b", "given": "threads >= 8", "when": "tests/test_x.py::test_one", "then": "fails"},
        {"id": "c", "given": "threads < 2", "then": "fails"},          # disjoint from a: fine
        {"id": "d", "given": "threads > 4", "when": "tests/test_y.py::*", "then": "fails"},
    ]))
    assert [(f.kind, f.specs) for f in found] == [("contradiction", ("a@1", "b@1"))]
    space = Space(threads=Int(1, 16), cache=Choice(["off", "lru"]),
                  constraints=["cache == 'off' -> threads <= 4"])
    found = lint(specs([
        {"id": "e", "given": "cache == 'off' and threads > 8", "then": "passes"},
        {"id": "f", "given": "workers > 2", "then": "passes"},
        {"id": "g", "given": "threads > 20", "then": "passes"},
    ]), space)
    assert sorted((f.kind, f.specs) for f in found) == [
        ("never-matches", ("e@1",)), ("never-matches", ("g@1",)),
        ("unknown-parameter", ("f@1",))]


# -- the command line against a real store ------------------------------------------------------

SPEC_FILE = """\
specs:
  - id: lru-passes
    version: 1
    given: "cache.mode == 'lru'"
    then: passes
  - id: off-passes
    version: 1
    given: "cache.mode == 'off'"
    when: {nodeid: "tests/*", markers: [orders]}
    then: {outcome: passes}
  - id: nobody
    given: "threads > 100"
    then: passes
"""


def _store_with_results(path: Path) -> None:
    now = datetime.now(UTC)
    with Store.open(path) as db:
        run = Run(run_id="r1", started_at=now)
        db.begin_run(run)
        case = Case.from_nodeid(ORDERS)
        db.add_cases([case], run_id="r1")
        results, variants = [], []
        for row in _rows()[:20]:
            variant = Variant.of(case, row["params"], origin="pairwise")
            variants.append(variant)
            results.append(Result(run_id="r1", variant_id=variant.variant_id,
                                  case_id=case.case_id, nodeid=ORDERS, worker="gw0",
                                  outcome=Outcome(row["outcome"]), duration=row["duration"],
                                  message=row["message"], keywords=["orders", "test_order"]))
        db.add_variants(variants)
        db.append_results(results)
        db.finish_run(run.model_copy(update={"finished_at": now, "exit_code": 1}))


def test_spec_check_cli_gates_ci_and_writes_every_format(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    _store_with_results(store)
    (tmp_path / "specs.yaml").write_text(SPEC_FILE)
    ran = run_cli(tmp_path, "spec", "check", "specs.yaml", "--run", "last", "--store", store,
                  "--json", "v.json", "--md", "v.md", "--junitxml", "v.xml")
    assert ran.returncode == 1, ran.log
    assert "1 violated, 1 holds, 1 untested" in ran.stdout
    data = json.loads((tmp_path / "v.json").read_text())
    by_id = {s["id"]: s for s in data["specs"]}
    assert by_id["off-passes"]["status"] == "violated" and by_id["off-passes"]["violations"] == 5
    assert by_id["off-passes"]["examples"][0]["params"] == {"cache.mode": "off", "threads": 8}
    suite = ET.parse(tmp_path / "v.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"lru-passes@1", "off-passes@1", "nobody@1"}
    assert cases["off-passes@1"].find("failure") is not None
    assert cases["nobody@1"].find("skipped") is not None
    assert "❌ violated" in (tmp_path / "v.md").read_text()
    strict = run_cli(tmp_path, "spec", "check", "specs.yaml", "--store", store, "--strict")
    assert strict.returncode == 1


def test_spec_versions_are_kept_and_an_edited_version_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    _store_with_results(store)
    (tmp_path / "specs.yaml").write_text("specs:\n  - {id: a, version: 1, then: passes}\n")
    assert run_cli(tmp_path, "spec", "check", "specs.yaml", "--store", store).returncode == 1
    (tmp_path / "specs.yaml").write_text("specs:\n  - {id: a, version: 1, then: fails}\n")
    edited = run_cli(tmp_path, "spec", "check", "specs.yaml", "--store", store)
    assert edited.returncode == 2 and "new version" in edited.stderr
    (tmp_path / "specs.yaml").write_text("specs:\n  - {id: a, version: 2, then: fails}\n")
    assert run_cli(tmp_path, "spec", "check", "specs.yaml", "--store", store).returncode == 1
    history = run_cli(tmp_path, "spec", "history", "a", "--store", store)
    assert history.returncode == 0
    assert "version 1" in history.stdout and "version 2" in history.stdout


def test_spec_lint_cli(tmp_path: Path) -> None:
    (tmp_path / "specs.yaml").write_text(
        "specs:\n  - {id: a, given: 'threads > 4', then: passes}\n"
        "  - {id: b, given: 'threads > 6', then: fails}\n")
    (tmp_path / "space.yaml").write_text("dimensions:\n  threads: {type: int, min: 1, max: 8}\n")
    ran = run_cli(tmp_path, "spec", "lint", "specs.yaml", "--space", "space.yaml")
    assert ran.returncode == 1 and "contradiction" in ran.stdout
    (tmp_path / "bad.yaml").write_text("specs:\n  - {id: a, then: explode}\n")
    bad = run_cli(tmp_path, "spec", "lint", "bad.yaml")
    assert bad.returncode == 2 and "bad.yaml" in bad.stderr and "Traceback" not in bad.output


def test_specs_over_a_real_run(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {
        "tests/test_a.py": "import pytest\n\n@pytest.mark.slow\ndef test_ok():\n    pass\n\n"
                           "def test_bad():\n    assert False, 'boom 42'\n",
    })
    ran = run_testfleet(project)
    assert ran.returncode == 1, ran.log
    (project / "specs.yaml").write_text(
        "specs:\n  - {id: slow-ok, when: {markers: [slow]}, then: passes}\n"
        "  - {id: bad-fails, when: 'tests/test_a.py::test_bad', "
        "then: {outcome: fails, message: 'boom \\d+'}}\n")
    check_ran = run_cli(project, "spec", "check", "specs.yaml", "--store", ran.store)
    assert check_ran.returncode == 0, check_ran.log
    assert "2 holds" in check_ran.stdout
    (project / "specs.yaml").write_text("specs:\n  - {id: nothing, when: 'tests/none*', then: passes}\n")
    untested = run_cli(project, "spec", "check", "specs.yaml", "--store", ran.store)
    assert untested.returncode == 0 and "1 untested" in untested.stdout
    strict = run_cli(project, "spec", "check", "specs.yaml", "--store", ran.store, "--strict")
    assert strict.returncode == 1
