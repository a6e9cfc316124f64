"""``@testfleet.explore`` and ``testfleet run --explore``, end to end in real processes: the
baseline under plain pytest, an exact execution budget, a planted failure found and minimised,
rules whose trigger fired recorded as the variant's origin with their provenance, replay of an
explored variant, past failures replayed first, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.conftest import make_suite, run_cli, run_pytest, run_testfleet
from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

SUITE = """
import testfleet
from testfleet import Float, Int, Permutation


@testfleet.explore(size=Int(100, 1000, step=100), jitter=Float(0, 500),
                   order=Permutation(["a", "b", "c"]))
def test_upload(size, jitter, order):
    assert size % 100 == 0 and 0 <= jitter <= 500 and sorted(order) == ["a", "b", "c"]
    assert not (size >= 800 and order[0] == "c"), "too big when c goes first"


def test_plain():
    pass
"""

RULES = """
rules:
  - mutation_name: BiggerWhenWorking
    target_parameter: size
    variation_type: range
    min_value: 100
    max_value: 1000
    step_size: 100
    trigger_condition: "worker.rss_mb > 1"
    priority: 1
"""


def _project(tmp_path: Path, suite: str = SUITE) -> Path:
    return make_suite(tmp_path / "p", {"tests/test_e.py": suite, "rules.yaml": RULES})


def _variants(store: Path, run_ref: str = "last") -> list[tuple[str, str, dict, str]]:
    with Store.open(store, read_only=True) as db:
        run_id = db.get_run(run_ref).run_id
        rows = db.query("SELECT v.origin, r.outcome, v.params::VARCHAR, v.variant_id FROM results r "
                        "JOIN variants v USING (variant_id) WHERE r.run_id = $1 AND r.final "
                        "AND r.nodeid LIKE '%test_upload%' ORDER BY r.rowid", [run_id])
    return [(o, out, json.loads(p), vid) for o, out, p, vid in rows]


def test_plain_pytest_runs_the_baseline_once(tmp_path: Path) -> None:
    ran = run_pytest(_project(tmp_path), "-v")
    assert ran.returncode == 0, ran.log
    assert "test_upload[baseline] PASSED" in ran.stdout and "2 passed" in ran.stdout


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory):
    project = _project(tmp_path_factory.mktemp("explore"))
    return project, run_testfleet(project, "--explore", "40", "--seed", "7", "--ruleset", "rules.yaml")


def test_the_budget_is_spent_exactly_and_the_failure_is_found(explored) -> None:
    _project, ran = explored
    assert ran.returncode == 1, ran.log  # exploration found a failing variant
    variants = _variants(ran.store)
    explored_ones = [v for v in variants if v[0] not in ("baseline", "minimize")]
    assert len(explored_ones) == 40
    assert len({v[3] for v in variants}) == len(variants)  # never the same variant twice
    assert any(out == "failed" for _o, out, _p, _v in explored_ones)
    for _origin, outcome, params, _vid in explored_ones:  # the outcome follows the planted rule
        expected = "failed" if params["size"] >= 800 and params["order"][0] == "c" else "passed"
        assert outcome == expected, params


def test_the_failure_is_minimised_and_shown_once(explored) -> None:
    _project, ran = explored
    assert "EXPLORED FAILURES" in ran.stdout
    # 800 is the smallest failing size; c must come first (either order of a and b is minimal)
    assert re.search(r"minimal failing change: size=800, order=\['c', '[ab]', '[ab]'\]", ran.stdout)
    assert ran.stdout.count("AssertionError: too big when c goes first\n") <= 2  # grouped, not 1 per variant
    with Store.open(ran.store, read_only=True) as db:
        events = TelemetryStore(db).events(db.get_run("last").run_id, kinds=("minimized",))
    assert len(events) == 1
    assert events[0]["minimal_params"]["size"] == 800 and events[0]["complete"]
    assert "jitter" not in events[0]["changes"]  # jitter never mattered


def test_rules_that_fired_are_the_origin_with_their_provenance(explored) -> None:
    _project, ran = explored
    variants = _variants(ran.store)
    fired = [v for v in variants if v[0] == "rule:BiggerWhenWorking"]
    assert fired
    with Store.open(ran.store, read_only=True) as db:
        events = TelemetryStore(db).events(db.get_run("last").run_id, kinds=("variant",))
    provenance = {e["variant_id"]: e for e in events}
    first = provenance[fired[0][3]]
    assert first["rule"] == "BiggerWhenWorking" and first["trigger"] == "worker.rss_mb > 1"
    assert first["trigger_values"]["worker.rss_mb"] > 1 and first["ruleset_version"]
    # proposed by the mutation engine of the worker that ran the parent, from its telemetry
    assert re.fullmatch(r"gw\d+", first["proposed_by"]) and first["parent_id"]
    assert "rule" in ran.stdout  # the source table of the summary


def test_the_same_seed_proposes_the_same_variants(explored, tmp_path: Path) -> None:
    _unused, ran = explored
    again = run_testfleet(_project(tmp_path), "--explore", "40", "--seed", "7", "--ruleset", "rules.yaml")
    first = [(o, p) for o, _out, p, _v in _variants(ran.store, ran.run().run_id)]
    second = [(o, p) for o, _out, p, _v in _variants(again.store)]
    assert sorted(map(json.dumps, first)) == sorted(map(json.dumps, second))


def test_an_explored_variant_replays_exactly(explored) -> None:
    project, ran = explored
    failing = next(v for v in _variants(ran.store) if v[1] == "failed" and v[0] != "baseline")
    replayed = run_cli(project, "replay", failing[3][:12], "--store", ran.store)
    assert replayed.returncode == 1, replayed.log
    assert json.dumps(failing[2]["order"]) in replayed.stdout and "1 failed" in replayed.stdout


def test_past_failures_are_replayed_first_and_known_variants_not_rerun(explored, tmp_path: Path) -> None:
    project, ran = explored
    with Store.open(ran.store, read_only=True) as db:  # every earlier run in this store
        rows = db.query("SELECT r.variant_id, r.outcome, v.origin FROM results r "
                        "JOIN variants v USING (variant_id) WHERE r.final")
    before = {vid for vid, _o, _g in rows}
    failed_before = {vid for vid, outcome, origin in rows if outcome == "failed" and origin != "baseline"}
    nxt = run_testfleet(project, "--explore", "10", "--seed", "8", store=ran.store)
    assert nxt.returncode == 1, nxt.log
    with Store.open(ran.store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        why = {e["variant_id"]: e["origin"] for e in TelemetryStore(db).events(run_id, kinds=("variant",))}
    replayed = {vid for vid, origin in why.items() if origin == "replay"}
    fresh = {vid for vid, origin in why.items() if origin != "replay"}
    assert replayed and replayed <= failed_before
    first = [e for e in why.values()][: len(replayed)]
    assert set(first) == {"replay"}  # replays go first
    assert not fresh & before  # a known variant is never proposed again


def test_bad_budgets_and_rulesets_are_usage_errors(tmp_path: Path) -> None:
    project = _project(tmp_path)
    ran = run_testfleet(project, "--explore", "soon")
    assert ran.returncode == 4 and "--explore" in ran.stderr and "2m" in ran.stderr
    (project / "bad.yaml").write_text("rules:\n  - mutation_name: X\n    target_parameter: size\n"
                                      "    variation_type: range\n    min_value: 9\n    max_value: 1\n")
    ran = run_testfleet(project, "--explore", "5", "--ruleset", "bad.yaml")
    assert ran.returncode == 4 and "bad.yaml" in ran.stderr and "max_value" in ran.stderr
    assert "Traceback" not in ran.output


def test_a_time_budget_stops_proposing(tmp_path: Path) -> None:
    ran = run_testfleet(_project(tmp_path, SUITE.replace('"too big when c goes first"', '"x"')
                                 .replace("assert not (size >= 800", "assert not (size >= 9999")),
                        "--explore", "2s")
    assert ran.returncode == 0, ran.log
    assert "exploration" in ran.stdout and "budget 2 s" in ran.stdout



SMALL_SPACE = """
import testfleet
from testfleet import Int


@testfleet.explore(x=Int(0, 1000, step=100))
def test_small(x):
    assert 0 <= x <= 1000
"""


def test_a_budget_larger_than_the_space_stops_when_every_point_ran(tmp_path: Path) -> None:
    """11 points and a budget of 40: the run ends after the 10 points beside the baseline (it
    used to draw the same random points forever) and says the space was used up."""
    project = make_suite(tmp_path / "p", {"tests/test_s.py": SMALL_SPACE})
    ran = run_testfleet(project, "--explore", "40", workers=1, timeout=120)
    assert ran.returncode == 0, ran.log
    assert "10 explored executions" in ran.stdout
    assert "every point of the space ran" in ran.stdout and "test_small" in ran.stdout
    with Store.open(project / "s.duckdb", read_only=True) as db:
        xs = [json.loads(p)["x"] for (p,) in db.query(
            "SELECT v.params::VARCHAR FROM results r JOIN variants v USING (variant_id) "
            "WHERE r.final ORDER BY r.rowid")]
    assert sorted(xs) == list(range(0, 1001, 100))

LIST_SCENARIO = """
name: list pages
params:
  limit: {type: int, min: 1, max: 600, default: 50}
  offset: {type: int, min: 0, max: 100, default: 0}
steps:
  - request: {method: GET, path: /items, query: {limit: "{limit}", offset: "{offset}"}}
    expect: {status: [200]}
"""


def test_a_scenario_space_is_explored_and_its_failure_minimised(tmp_path: Path) -> None:
    import sys

    service = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"
    project = make_suite(tmp_path / "p", {
        "pyproject.toml": "[tool.testfleet.sut]\n"
                          f"command = {json.dumps(sys.executable + ' ' + str(service) + ' --port {port}')}\n"
                          "ready = {http = \"http://127.0.0.1:{port}/health\"}\nstart_timeout = 20.0\n"
                          "config = {cache = \"lru\", threads = 3}\n",
        "tests/list.scenario.yaml": LIST_SCENARIO})
    ran = run_testfleet(project, "--explore", "25", "--seed", "3")
    assert ran.returncode == 1, ran.log  # the service refuses limit > 500: 422, not 200
    assert "minimal failing change: limit=501" in ran.stdout
    # the instance config each failing variant ran against is part of its provenance, as a snapshot
    assert re.search(r"instance gw\d config \{cache='lru', threads=3\} \(snapshot [0-9a-f]{12}\)", ran.stdout)
    from testfleet.snapshots.store import SnapshotStore

    with Store.open(ran.store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        events = TelemetryStore(db).events(run_id, kinds=("instance", "minimized"))
        instances = [e for e in events if e["kind"] == "instance"]
        assert instances and all(e["config"] == {"cache": "lru", "threads": 3} for e in instances)
        snapshots = SnapshotStore(db)
        # one snapshot per instance that ran a failing variant (both may, while replays of the
        # first failure keep one busy), each holding the same config
        saved = {e["instance"]: e["snapshot"] for e in instances}
        for name, snapshot in saved.items():
            assert json.loads(snapshots.read_file(snapshot, f"{name}.json")) == {"cache": "lru", "threads": 3}
            assert snapshot in snapshots.run_snapshots(run_id).values()
        [minimized] = [e for e in events if e["kind"] == "minimized"]
        assert minimized["instance_snapshot"]["snapshot"] in saved.values()


TWO_CASES = """
import testfleet
from testfleet import Int


@testfleet.explore(a=Int(0, 1000))
def test_one(a):
    pass


@testfleet.explore(b=Int(0, 1000))
def test_two(b):
    pass
"""


def test_each_case_stays_within_its_budget(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_two.py": TWO_CASES})
    ran = run_testfleet(project, "--explore", "40", "--explore-per-case", "6", "--seed", "2")
    assert ran.returncode == 0, ran.log
    with Store.open(ran.store, read_only=True) as db:
        rows = db.query("SELECT r.nodeid, count(*) FROM results r JOIN variants v USING (variant_id) "
                        "WHERE r.final AND v.origin <> 'baseline' GROUP BY r.nodeid ORDER BY 1")
    # both cases got their 6 and the run stopped there, short of the 40 executions
    assert [(n.rsplit("::", 1)[1].split("[")[0], c) for n, c in rows] == [("test_one", 6), ("test_two", 6)]
    assert "12 explored executions of 2 cases" in ran.stdout


def test_two_rulesets_are_compared(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "other.yaml").write_text(RULES.replace("BiggerWhenWorking", "ShuffleWhenWorking")
                                        .replace("target_parameter: size", "target_parameter: order")
                                        .replace("variation_type: range", "variation_type: shuffle")
                                        .replace("    min_value: 100\n    max_value: 1000\n    step_size: 100\n", ""))
    ran = run_testfleet(project, "--explore", "30", "--ruleset", "rules.yaml", "--ruleset-b", "other.yaml",
                        "--ab", "50")
    assert ran.returncode in (0, 1), ran.log
    assert "ruleset A (rules.yaml)" in ran.stdout and "ruleset B (other.yaml)" in ran.stdout
    assert "A/B:" in ran.stdout and "Fisher p=" in ran.stdout
    origins = {v[0].rpartition("@")[2] for v in _variants(ran.store) if "@" in v[0]}
    assert origins == {"A", "B"}
    bad = run_testfleet(project, "--ruleset-b", "other.yaml")
    assert bad.returncode == 4 and "--explore" in bad.stderr


def test_the_ab_verdict_is_stored_and_shown_and_replays_stay_out_of_its_budget(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "other.yaml").write_text(RULES.replace("BiggerWhenWorking", "Other"))
    first = run_testfleet(project, "--explore", "40", "--seed", "7", "--ruleset", "rules.yaml")
    assert first.returncode == 1, first.log  # failures to replay in the next run
    ran = run_testfleet(project, "-q", "--explore", "20", "--seed", "8", "--ruleset", "rules.yaml",
                        "--ruleset-b", "other.yaml", "--ab", "50")
    assert ran.returncode == 1, ran.log
    with Store.open(ran.store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        [event] = TelemetryStore(db).events(run_id, kinds=("ab",))
        proposed = TelemetryStore(db).events(run_id, kinds=("variant",))  # each explored variant's provenance
    replays = [e for e in proposed if e["origin"] == "replay"]
    arms = [e for e in proposed if e["origin"] != "replay"]
    assert replays and {e["arm"] for e in arms} == {"A", "B"}
    assert len(arms) == 20  # the arms spend the whole budget on what their rulesets propose
    assert event["arms"]["A"]["executions"] + event["arms"]["B"]["executions"] == 20
    assert event["replays"] == len(replays) and "Fisher p=" in event["verdict"]
    shown = run_cli(project, "show", "last", "--store", ran.store)
    assert shown.returncode == 0, shown.log
    assert f"A/B: {event['verdict']}" in shown.stdout and "ruleset A (rules.yaml)" in shown.stdout
    assert f"{len(replays)} replay" in shown.stdout


def _summary_counts(stdout: str) -> tuple[int, int]:
    """(failing explored variants, failing results the summary adds up to) of the summary line;
    the parts in parentheses must add up to their total."""
    found = re.search(r"; (\d+) failing explored variants?( \(of the (\d+) failing results: (.*)\))?\n", stdout)
    assert found, stdout
    explored = int(found.group(1))
    if not found.group(2):
        return explored, explored
    parts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (explored|minimisation|baseline)", found.group(4)))
    assert parts["explored"] == explored and sum(parts.values()) == int(found.group(3)), found.group(0)
    return explored, int(found.group(3))


def test_the_exploration_summary_adds_up_to_the_result_line(explored, tmp_path: Path) -> None:
    _project_dir, ran = explored
    failing_explored = sum(1 for v in _variants(ran.store) if v[1] == "failed" and v[0] not in ("baseline", "minimize"))
    assert _summary_counts(ran.stdout) == (failing_explored, ran.counts["failed"])
    # a failing baseline test besides: the summary says how the result line's count adds up
    project = _project(tmp_path, SUITE.replace("def test_plain():\n    pass", "def test_plain():\n    assert False"))
    again = run_testfleet(project, "--explore", "20", "--seed", "7")
    assert again.returncode == 1, again.log
    explored_count, total = _summary_counts(again.stdout)
    assert total == again.counts["failed"] and explored_count < total
    assert "1 baseline test)" in again.stdout


EDITING = '''
import pathlib
import time

import testfleet
from testfleet import Int

SECOND = """
rules:
  - mutation_name: Second
    target_parameter: n
    variation_type: set
    values: [777]
"""


@testfleet.explore(n=Int(0, 1000))
def test_n(n):
    rules = pathlib.Path(__file__).parents[1] / "rules.yaml"
    if n == 0 and "Second" not in rules.read_text():  # the baseline: the user edits the ruleset
        rules.write_text(SECOND)
    time.sleep(0.03)  # the run lasts long enough for the twice-a-second check of the file
'''
FIRST = """
rules:
  - mutation_name: First
    target_parameter: n
    variation_type: set
    values: [111]
"""


def test_an_edited_ruleset_reaches_the_workers_during_the_run(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", {"tests/test_edit.py": EDITING, "rules.yaml": FIRST})
    ran = run_testfleet(project, "--explore", "40", "--seed", "4", "--ruleset", "rules.yaml")
    assert ran.returncode == 0, ran.log
    with Store.open(ran.store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        events = TelemetryStore(db).events(run_id, kinds=("variant",))
        kept = TelemetryStore(db).events(run_id, kinds=("ruleset",))
    # both versions are kept in the store, whole
    assert [e["document"]["rules"][0]["mutation_name"] for e in kept] == ["First", "Second"]
    second = [e for e in events if e["origin"] == "rule:Second"]
    # proposed by a worker's engine after the edit, with the new version, never with the old
    assert second and all(re.fullmatch(r"gw\d+", e["proposed_by"]) for e in second)
    versions = {e["ruleset_version"] for e in events if e["origin"].startswith("rule:")}
    assert len(versions) == 2
    assert {e["ruleset_version"] for e in second}.isdisjoint(
        {e["ruleset_version"] for e in events if e["origin"] == "rule:First"})
    assert any(v[2]["n"] == 777 for v in _variants_of(ran.store, "test_n"))


def _variants_of(store: Path, name: str) -> list[tuple[str, str, dict, str]]:
    with Store.open(store, read_only=True) as db:
        rows = db.query("SELECT v.origin, r.outcome, v.params::VARCHAR, v.variant_id FROM results r "
                        "JOIN variants v USING (variant_id) WHERE r.final AND r.nodeid LIKE $1",
                        [f"%{name}%"])
    return [(o, out, json.loads(p), vid) for o, out, p, vid in rows]


# -- the SUT's config_space: every explored variant keeps its constraints ----------------------

REDIS_LIKE_SPACE = """
dimensions:
  appendonly: {type: choice, values: ["yes", "no"]}
  appendfsync: {type: choice, values: [always, everysec, "no"]}
  io-threads: {type: int, min: 1, max: 8}
  io-threads-do-reads: {type: choice, values: ["yes", "no"]}
  maxmemory: {type: int, min: 0, max: 64}
constraints:
  - "appendonly == 'no' -> appendfsync != 'always'"
  - "`io-threads` == 1 -> `io-threads-do-reads` == 'no'"
  - "maxmemory == 0 or maxmemory >= 8"
"""


def _sut_spaces(tmp_path: Path):
    from testfleet.configs.fuzz import load_input
    from testfleet.execution.sut_spec import SutSpec, explored_space

    (tmp_path / "redis.space.yaml").write_text(REDIS_LIKE_SPACE)
    spec = SutSpec(command="redis-server {config}", config_space="redis.space.yaml", cwd=str(tmp_path),
                   config={"appendonly": "yes", "appendfsync": "always", "io-threads": 4,
                           "io-threads-do-reads": "yes", "maxmemory": 16})
    return load_input(tmp_path / "redis.space.yaml").space, explored_space(spec), spec


def _sut_params_hold(original, params: dict) -> bool:
    point = {k[4:]: v for k, v in params.items() if k.startswith("sut.")}
    return original.is_valid(point)


def test_the_explored_sut_space_keeps_every_constraint_and_the_config_as_baseline(tmp_path: Path) -> None:
    import itertools

    original, explored, spec = _sut_spaces(tmp_path)
    assert explored.baseline() == {f"sut.{k}": v for k, v in spec.config.items()}
    names = original.names
    values = [["yes", "no"], ["always", "everysec", "no"], range(1, 9), ["yes", "no"], [0, 4, 8, 64]]
    for combo in itertools.product(*values):  # exhaustive: valid there exactly when valid here
        point = dict(zip(names, combo, strict=True))
        assert explored.is_valid({f"sut.{k}": v for k, v in point.items()}) == original.is_valid(point), point


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), fails_on=st.sampled_from(["io-threads", "maxmemory", "appendfsync"]))
def test_explorer_engine_and_minimiser_propose_only_valid_sut_configs(tmp_path: Path, seed: int,
                                                                     fails_on: str) -> None:
    from testfleet.execution.explorer import Budget, Explorer
    from testfleet.model import Case, Outcome, Result, Variant
    from testfleet.mutation.engine import Execution, MutationEngine
    from testfleet.mutation.minimize import minimize
    from testfleet.space.declare import space_to_dict

    original, explored, _spec = _sut_spaces(tmp_path)
    baseline_params = explored.baseline()

    def failing(params: dict) -> bool:
        value = params.get(f"sut.{fails_on}", baseline_params[f"sut.{fails_on}"])
        return value != baseline_params[f"sut.{fails_on}"]

    case = Case.from_nodeid("t.py::test_sut")
    baseline = Variant.of(case, {})
    explorer = Explorer(Budget(executions=40), seed, batch_size=4)
    explorer.register([{"nodeid": case.nodeid, "params": {}, "space": space_to_dict(explored)}],
                      [case], [baseline])
    engine = MutationEngine()

    def run(variant: Variant) -> None:
        bad = failing(variant.params)
        result = Result(run_id="r", variant_id=variant.variant_id, case_id=case.case_id, nodeid=case.nodeid,
                        outcome=Outcome.failed if bad else Outcome.passed, fingerprint="t.py:1:E")
        task = explorer.task(0, variant)
        proposals = engine.propose(case.nodeid, explored, task, Execution(failed=bad, fingerprint="t.py:1:E"))
        for proposal in proposals:  # the worker's engine
            assert _sut_params_hold(original, {**baseline_params, **proposal["params"]}), proposal
        explorer.observe(0, variant, result, (), proposals)

    run(baseline)
    dispatched = []
    while explorer.active:
        batch = explorer.take()
        if not batch:
            break
        for _proposal, variant in batch:  # the coordinator's sources: coverage, mutations
            assert _sut_params_hold(original, {**baseline_params, **variant.params}), variant
            dispatched.append(variant)
            run(variant)
    assert dispatched
    for found in explorer.found:  # minimisation asks only about valid configurations
        def still_fails(params: dict) -> bool:
            assert _sut_params_hold(original, params), params
            return failing(params)

        minimize(dict(baseline_params), {**baseline_params, **found["params"]}, still_fails,
                 space=explored, max_tests=30)
