"""The DuckDB result store, on real files: round trips, queries, and the ways opening can fail."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.errors import StoreError
from testfleet.model import Case, Outcome, Result, Run, RunStatus, Variant
from testfleet.store import db as store_db
from testfleet.store.db import SCHEMA_VERSION, Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_run(run_id: str, minutes: int = 0, **fields: object) -> Run:
    return Run(run_id=run_id, started_at=T0 + timedelta(minutes=minutes), **fields)


def finish(run: Run, **fields: object) -> Run:
    values = {"finished_at": run.started_at + timedelta(seconds=30),
              "status": RunStatus.finished, "exit_code": 0} | fields
    return run.model_copy(update=values)


def make_result(run_id: str, nodeid: str, outcome: Outcome | str = Outcome.passed,
                **fields: object) -> Result:
    case = Case.from_nodeid(nodeid)
    variant = Variant.of(case)
    return Result(run_id=run_id, variant_id=variant.variant_id, case_id=case.case_id,
                  nodeid=nodeid, outcome=outcome, **fields)


def record(store: Store, run: Run, results: list[Result], **finish_fields: object) -> Run:
    """One whole finished run, the way the orchestrator writes it."""
    store.begin_run(run)
    store.append_results(results)
    done = finish(run, **finish_fields)
    store.finish_run(done)
    return done


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".testfleet" / "testfleet.duckdb"


@pytest.fixture
def store(path: Path):
    with Store.open(path) as opened:
        yield opened


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def set_schema_version(path: Path, version: int) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'", [str(version)])


# -- round trips ----------------------------------------------------------------------------


def test_run_with_cases_variants_and_results_round_trips(path: Path) -> None:
    cases = [Case.from_nodeid("tests/test_a.py::test_one", file="tests/test_a.py", line=3,
                              name="test_one", markers=["slow"]),
             Case.from_nodeid("tests/test_a.py::test_two[x-1]", file="tests/test_a.py", line=9)]
    variants = [Variant.of(cases[0]),
                Variant.of(cases[1], {"size": 4096, "mode": "fast", "nested": {"a": [1, 2.5]}},
                           origin="rule:grow")]
    variants.append(Variant.of(cases[1], {"size": 1}, origin="edge",
                               parent_id=variants[1].variant_id))
    run = make_run("20240501-abcdef", argv=["run", "tests/", "--workers", "2"], paths=["tests/"],
                   rootdir="/repo", settings={"workers": 2, "explore": None}, seed=2**40 + 7,
                   git_sha="deadbeef", backend="local", workers=2)
    first = make_result(run.run_id, cases[0].nodeid, Outcome.failed, attempt=1, worker="gw0",
                        duration=0.25, started_at=T0, finished_at=T0 + timedelta(seconds=1),
                        when="call", message="assert 1 == 2", longrepr="E   assert 1 == 2",
                        stdout="out", stderr="err", log="INFO x", categories=["failed"],
                        fingerprint="fp1", file="tests/test_a.py", line=3, keywords=["slow"],
                        phases={"call": {"outcome": "failed", "duration": 0.25}}, final=False)
    second = first.model_copy(update={"attempt": 2, "outcome": Outcome.passed,
                                      "finished_at": T0 + timedelta(seconds=2), "flaky": True,
                                      "final": True, "categories": ["passed"]})
    third = Result(run_id=run.run_id, variant_id=variants[1].variant_id, case_id=cases[1].case_id,
                   nodeid=cases[1].nodeid, outcome=Outcome.skipped, categories=["skipped"])

    with Store.open(path) as store:
        store.begin_run(run)
        assert store.get_run(run.run_id) == run
        store.add_cases(cases, run_id=run.run_id)
        store.add_variants(variants)
        store.append_results([third, second])
        store.append_results([first])
        done = finish(run, exit_code=1, collected=2, deselected=1, flaky=1, duration=3.5,
                      counts={"passed": 1, "skipped": 1})
        store.finish_run(done)

    with Store.open(path, read_only=True) as store:
        assert store.get_run(run.run_id) == done
        assert store.list_runs() == [done]
        assert store.results(run.run_id) == [first, second, third]
        assert store.results(run.run_id, final_only=True) == [second, third]
        assert store.cases(run.run_id) == cases
        assert store.cases() == cases
        assert store.variants() == sorted(variants, key=lambda v: (v.case_id, v.variant_id))
        assert store.variants(cases[0].case_id) == [variants[0]]
        assert store.variant_params([variants[2].variant_id, "nope"]) == {
            variants[2].variant_id: variants[2].params}  # ids not stored are left out
        assert store.flaky(run.run_id) == [cases[0].nodeid]
        assert store.results("no-such-run") == []


def test_cases_and_variants_are_upserted_not_duplicated(store: Store) -> None:
    case = Case.from_nodeid("t.py::test_x", name="first")
    store.begin_run(make_run("r1"))
    store.begin_run(make_run("r2", 1))
    store.add_cases([case, case], run_id="r1")
    store.add_cases([case.model_copy(update={"name": "second"})], run_id="r2")
    store.add_variants([Variant.of(case)] * 3)
    store.add_variants([Variant.of(case)])
    assert store.cases() == [case]
    assert store.cases("r1") == store.cases("r2") == [case]
    assert store.variants() == [Variant.of(case)]


def test_timestamps_keep_their_instant_whatever_the_zone(store: Store) -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    aware = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=zone)
    naive = datetime(2024, 1, 2, 3, 4, 5, 1)
    store.begin_run(make_run("r1"))
    store.append_results([make_result("r1", "t::a", started_at=aware, finished_at=naive)])
    [back] = store.results("r1")
    assert back.started_at == aware and back.started_at.utcoffset() == timedelta(0)
    assert back.finished_at == naive.replace(tzinfo=UTC)


def test_a_failing_batch_writes_nothing(store: Store) -> None:
    store.begin_run(make_run("r1"))
    good = make_result("r1", "t::good")
    bad = make_result("r1", "t::bad").model_copy(update={"outcome": None})  # NOT NULL column
    with pytest.raises(StoreError, match="cannot store results"):
        store.append_results([good, bad])
    assert store.results("r1") == []
    store.append_results([good])
    assert store.results("r1") == [good]


def test_a_large_batch_is_stored_whole(store: Store) -> None:
    store.begin_run(make_run("big"))
    results = [make_result("big", f"t.py::test_{i:05d}", duration=i / 1000,
                           finished_at=T0 + timedelta(milliseconds=i)) for i in range(5000)]
    store.append_results(results)
    assert store.results("big") == results


def test_run_bookkeeping_errors(store: Store) -> None:
    run = make_run("r1")
    with pytest.raises(StoreError, match="no run 'r1' to finish"):
        store.finish_run(finish(run))
    store.begin_run(run)
    with pytest.raises(StoreError, match="cannot record run r1"):
        store.begin_run(run)


# -- finding runs -----------------------------------------------------------------------------


def test_get_run_by_id_prefix_or_last(store: Store) -> None:
    with pytest.raises(StoreError, match="no runs recorded yet"):
        store.get_run("last")
    runs = [make_run(run_id, minutes) for minutes, run_id in
            enumerate(["a1b2c3", "a1ffff", "b7e8e8", "a1"])]
    for run in runs:
        store.begin_run(run)
    assert store.get_run("last") == runs[3]
    assert store.get_run("b") == runs[2]
    assert store.get_run("a1b") == runs[0]
    assert store.get_run("a1") == runs[3]  # a full id wins over being a prefix of others
    with pytest.raises(StoreError, match="no run 'zz'") as info:
        store.get_run("zz")
    assert "unique prefix" in str(info.value) and str(store.path) in str(info.value)
    store.begin_run(make_run("a1fa", 9))
    with pytest.raises(StoreError, match="run prefix 'a1f' is ambiguous: it matches a1fa, a1ffff"):
        store.get_run("a1f")
    with pytest.raises(StoreError, match="no run ''"):
        store.get_run("")


def test_list_runs_newest_first_with_limit(store: Store) -> None:
    runs = [make_run(f"run{i}", minutes=i) for i in (3, 1, 4, 0, 2)]
    for run in runs:
        store.begin_run(run)
    assert [r.run_id for r in store.list_runs()] == ["run4", "run3", "run2", "run1", "run0"]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["run4", "run3"]


# -- history ----------------------------------------------------------------------------------


def test_duration_history_is_the_median_of_passed_and_failed_in_recent_finished_runs(
        store: Store) -> None:
    durations = {"t::odd": [1.0, 9.0, 2.0], "t::even": [1.0, 2.0, 3.0, 10.0]}
    for i in range(4):
        results = [make_result(f"r{i}", nodeid, Outcome.failed if i == 1 else Outcome.passed,
                               duration=values[i]) for nodeid, values in durations.items()
                   if i < len(values)]
        results.append(make_result(f"r{i}", "t::skipped", Outcome.skipped, duration=5.0))
        results.append(make_result(f"r{i}", "t::errors", Outcome.error, duration=5.0))
        record(store, make_run(f"r{i}", i), results)
    unfinished = make_run("running", 10)
    store.begin_run(unfinished)
    store.append_results([make_result("running", "t::odd", duration=1000.0)])

    assert store.duration_history() == {"t::odd": 2.0, "t::even": 2.5}
    assert store.duration_history(limit_runs=2) == {"t::odd": 2.0, "t::even": 6.5}
    assert store.duration_history(limit_runs=1) == {"t::even": 10.0}


def test_last_failed_looks_at_each_tests_latest_final_result(store: Store) -> None:
    f = make_result
    record(store, make_run("r1", 1), [
        f("r1", "t::fixed", Outcome.failed), f("r1", "t::not_rerun", Outcome.error),
        f("r1", "t::timeout", Outcome.timeout), f("r1", "t::ok", Outcome.passed)])
    record(store, make_run("r2", 2), [
        f("r2", "t::fixed", Outcome.passed), f("r2", "t::timeout", Outcome.timeout),
        f("r2", "t::ok", Outcome.passed),
        # retried: failed, then passed -> its final result passed
        f("r2", "t::retried", Outcome.failed, attempt=1, final=False),
        f("r2", "t::retried", Outcome.passed, attempt=2),
        # two variants of one test in one run: one failing variant is enough
        f("r2", "t::variants", Outcome.passed), f("r2", "t::variants", Outcome.crashed)])
    # a run still going (or killed) does not count yet
    store.begin_run(make_run("r3", 3))
    store.append_results([f("r3", "t::ok", Outcome.failed), f("r3", "t::fixed", Outcome.failed)])
    assert store.last_failed() == {"t::not_rerun", "t::timeout", "t::variants"}

    record(store, make_run("r4", 4), [f("r4", "t::not_rerun", Outcome.passed),
                                      f("r4", "t::skip", Outcome.skipped)])
    assert store.last_failed() == {"t::timeout", "t::variants"}


def test_flaky_lists_nodeids_marked_flaky_in_that_run(store: Store) -> None:
    record(store, make_run("r1"), [make_result("r1", "t::b", flaky=True),
                                   make_result("r1", "t::a", flaky=True, attempt=2),
                                   make_result("r1", "t::a", flaky=True, attempt=3),
                                   make_result("r1", "t::c")])
    record(store, make_run("r2", 1), [make_result("r2", "t::c", flaky=True)])
    assert store.flaky("r1") == ["t::a", "t::b"]
    assert store.flaky("r2") == ["t::c"]


# -- opening ----------------------------------------------------------------------------------


def test_open_creates_parent_dirs_and_schema(path: Path) -> None:
    assert not path.parent.exists()
    Store.open(path).close()
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
            == (str(SCHEMA_VERSION),)
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"meta", "runs", "cases", "variants", "run_cases", "results"} <= tables
    with Store.open(path) as store:  # reopening an existing store keeps it
        assert store.list_runs() == []


def test_read_only_open_of_a_missing_store_fails_and_creates_nothing(path: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        Store.open(path, read_only=True)
    assert not path.parent.exists()


def test_read_only_store_refuses_writes(path: Path) -> None:
    Store.open(path).close()
    with Store.open(path, read_only=True) as store:
        for write in (lambda: store.begin_run(make_run("r")),
                      lambda: store.finish_run(make_run("r")),
                      lambda: store.append_results([make_result("r", "t::a")])):
            with pytest.raises(StoreError, match="read-only"):
                write()


def test_closed_store_says_so(path: Path) -> None:
    store = Store.open(path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("content", [b"this is not a database\n" * 50, b"",
                                     b"DUCK" + bytes(range(256)) * 20])
def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes,
                                                    read_only: bool) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_bytes(content)
    before = snapshot(path)
    with pytest.raises(StoreError, match="is not a testfleet store \\(not a DuckDB database\\)") \
            as info:
        Store.open(path, read_only=read_only)
    assert str(path) in str(info.value)
    assert snapshot(path) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_newer_schema_is_refused_and_left_untouched(path: Path, read_only: bool) -> None:
    with Store.open(path) as store:
        store.begin_run(make_run("r1"))
    set_schema_version(path, SCHEMA_VERSION + 1)
    before = snapshot(path)
    with pytest.raises(StoreError) as info:
        Store.open(path, read_only=read_only)
    message = str(info.value)
    assert str(path) in message and "newer" in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"supports up to {SCHEMA_VERSION}" in message
    assert snapshot(path) == before


def test_duckdb_file_that_is_not_a_store_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE other (x INTEGER)")
    before = snapshot(path)
    with pytest.raises(StoreError, match="is not a testfleet store"):
        Store.open(path)
    assert snapshot(path) == before


def test_older_schema_is_migrated_step_by_step(path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(path) as store:
        store.begin_run(make_run("r1"))
    steps: list[int] = []

    def step(version: int):
        def migrate(conn: duckdb.DuckDBPyConnection) -> None:
            steps.append(version)
            conn.execute(f"CREATE TABLE added_in_{version + 1} (x INTEGER)")
        return migrate

    current = store_db.SCHEMA_VERSION
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", current + 2)
    monkeypatch.setattr(store_db, "MIGRATIONS", {current: step(current),
                                                 current + 1: step(current + 1)})
    with pytest.raises(StoreError, match="needs migrating"):
        Store.open(path, read_only=True)
    with Store.open(path) as store:
        assert [r.run_id for r in store.list_runs()] == ["r1"]
    assert steps == [current, current + 1]
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT value FROM meta").fetchall() == [(str(current + 2),)]
        conn.execute(f"SELECT * FROM added_in_{current + 1}, added_in_{current + 2}")


def test_a_version_1_store_gains_the_snapshot_and_spec_tables(path: Path) -> None:
    with Store.open(path) as store:
        store.begin_run(make_run("r1"))
    v2_tables = ["snapshots", "snapshot_entries", "snapshot_chunks", "snapshot_tags",
                 "snapshot_meta", "run_snapshots", "specs"]
    with duckdb.connect(str(path)) as conn:  # what testfleet 0.1 (schema 1) wrote
        for table in v2_tables:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store.open(path) as store:
        assert [r.run_id for r in store.list_runs()] == ["r1"]
        for table in v2_tables:
            assert store.query(f"SELECT count(*) FROM {table}") == [(0,)]


def test_opening_in_the_other_mode_within_one_process_is_explained(path: Path) -> None:
    with Store.open(path):
        with Store.open(path) as again:  # the same mode shares DuckDB's database: fine
            assert again.list_runs() == []
        with pytest.raises(StoreError, match="already open in this process"):
            Store.open(path, read_only=True)


HOLDER = textwrap.dedent("""
    import sys
    from testfleet.store.db import Store
    store = Store.open(sys.argv[1])
    print("open", flush=True)
    sys.stdin.read()
    store.close()
""")


def test_store_held_by_another_process_gives_a_clear_error(path: Path) -> None:
    Store.open(path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for read_only in (False, True):
            with pytest.raises(StoreError, match="in use by another process") as info:
                Store.open(path, read_only=read_only)
            assert str(path) in str(info.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    with Store.open(path, read_only=True) as store:  # usable once the other process is done
        assert store.list_runs() == []


# -- property: any results round-trip -------------------------------------------------------

# NUL and every other code point survive; surrogates cannot be encoded as UTF-8 by anyone.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | \
    st.floats(allow_nan=False) | text
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=8)
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)),
                                                  timezone(timedelta(hours=5, minutes=45))]))
results_strategy = st.lists(st.builds(
    Result, run_id=st.just("R"), variant_id=text, case_id=text, nodeid=text,
    attempt=st.integers(1, 2**31 - 1), worker=text, outcome=st.sampled_from(list(Outcome)),
    duration=st.floats(allow_nan=False), started_at=st.none() | moments,
    finished_at=st.none() | moments, when=st.none() | text, message=text, longrepr=text,
    stdout=text, stderr=text, log=text, categories=st.lists(text, max_size=3),
    fingerprint=st.none() | text, file=text, line=st.none() | st.integers(-(2**63), 2**63 - 1),
    keywords=st.lists(text, max_size=3),
    phases=st.dictionaries(text, st.dictionaries(text, json_value, max_size=3), max_size=3),
    flaky=st.booleans(), final=st.booleans()), max_size=12)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory):
    with Store.open(tmp_path_factory.mktemp("prop") / "store.duckdb") as opened:
        yield opened


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results=results_strategy)
def test_any_results_round_trip_unchanged(shared_store: Store, results: list[Result]) -> None:
    run_id = uuid.uuid4().hex
    results = [r.model_copy(update={"run_id": run_id}) for r in results]
    shared_store.append_results(results)
    order = sorted(range(len(results)), key=lambda i: (
        results[i].finished_at is None, results[i].finished_at or T0,
        results[i].nodeid.encode(), results[i].attempt, i))
    assert shared_store.results(run_id) == [results[i] for i in order]
    assert shared_store.results(run_id, final_only=True) == [results[i] for i in order
                                                             if results[i].final]
