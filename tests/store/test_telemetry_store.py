"""Telemetry in a real DuckDB store: series, per-metric statistics, events, the history anomaly
baselines start from, and the migration of a schema-2 store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from testfleet.model import Case, Outcome, Result, Run, RunStatus, Variant
from testfleet.store.db import SCHEMA_VERSION, Store
from testfleet.store.telemetry import TelemetryStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EPOCH = 1_714_564_800.0  # T0 in epoch seconds


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.duckdb"


@pytest.fixture
def store(path: Path):
    with Store.open(path) as opened:
        yield opened


def make_run(run_id: str, minutes: int) -> Run:
    return Run(run_id=run_id, started_at=T0 + timedelta(minutes=minutes))


def make_result(run_id: str, nodeid: str, *, rss: float, outcome: Outcome = Outcome.passed,
                attempt: int = 1, final: bool = True, duration: float = 0.1) -> Result:
    case = Case.from_nodeid(nodeid)
    return Result(run_id=run_id, variant_id=Variant.of(case).variant_id, case_id=case.case_id,
                  nodeid=nodeid, outcome=outcome, attempt=attempt, final=final, duration=duration,
                  telemetry={"sut.rss_mb": {"mean": rss - 1, "max": rss, "p95": rss, "delta": 0.0,
                                            "count": 3.0}})


def record(store: Store, run: Run, results: list[Result], *, finished: bool = True) -> None:
    store.begin_run(run)
    store.append_results(results)
    if finished:
        store.finish_run(run.model_copy(update={
            "finished_at": run.started_at + timedelta(seconds=30), "status": RunStatus.finished,
            "exit_code": 0}))


# -- series and statistics ---------------------------------------------------------------------


def write_random_series(tele: TelemetryStore, run_id: str, seed: int = 5):
    rng = np.random.default_rng(seed)
    expected: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    columns: dict[str, list] = {"worker": [], "t": [], "metric": [], "value": []}
    for metric in ("sut.rss_mb", "sut.cpu_percent", "custom.depth"):
        for worker in ("gw0", "gw1"):
            n = int(rng.integers(30, 120))
            t = np.sort(EPOCH + rng.uniform(0, 20, n))
            v = rng.normal(50, 10, n)
            expected[(metric, worker)] = (t, v)
            columns["worker"] += [worker] * n
            columns["t"] += list(t)
            columns["metric"] += [metric] * n
            columns["value"] += list(v)
    order = rng.permutation(len(columns["t"]))  # arrival order is not time order
    tele.append_series(run_id, *([columns[k][i] for i in order] for k in ("worker", "t", "metric", "value")))
    return expected


def test_stats_per_metric_and_worker_match_numpy(store: Store) -> None:
    tele = TelemetryStore(store)
    expected = write_random_series(tele, "r1")
    write_random_series(tele, "r2", seed=9)  # another run's samples stay out
    tele.append_series("r1", [], [], [], [])  # nothing to write is fine
    got = tele.stats("r1")
    assert [(s.metric, s.worker) for s in got] == sorted(expected)
    for s in got:
        t, v = expected[(s.metric, s.worker)]
        assert s.samples == v.size
        assert s.mean == pytest.approx(v.mean(), rel=1e-9)
        assert s.max == pytest.approx(v.max(), rel=1e-12)
        assert s.p95 == pytest.approx(np.percentile(v, 95), rel=1e-9)
        assert s.first == pytest.approx(v[np.argmin(t)]) and s.last == pytest.approx(v[np.argmax(t)])

    only_sut = tele.stats("r1", pattern="sut.*")
    assert {s.metric for s in only_sut} == {"sut.rss_mb", "sut.cpu_percent"}
    assert [(s.metric, s.worker, s.samples) for s in only_sut] == \
        [(s.metric, s.worker, s.samples) for s in got if s.metric.startswith("sut.")]
    assert tele.stats("r1", pattern="prom.*") == []
    assert tele.stats("no-such-run") == []


def test_series_is_downsampled_to_at_most_max_points(store: Store) -> None:
    tele = TelemetryStore(store)
    rng = np.random.default_rng(2)
    worker, t, metric, value = [], [], [], []
    lines = {("sut.rss_mb", "gw0"): (10.0, 0.5), ("sut.rss_mb", "gw1"): (-3.0, 2.0),
             ("custom.depth", "gw0"): (7.0, 0.0)}
    for (name, w), (a, b) in lines.items():
        times = np.sort(EPOCH + rng.uniform(0, 30, 400))
        times[0], times[-1] = EPOCH, EPOCH + 30.0  # every series spans the run's whole range
        worker += [w] * times.size
        t += list(times)
        metric += [name] * times.size
        value += list(a + b * (times - EPOCH))  # a straight line in time
    tele.append_series("r1", worker, t, metric, value)

    series = tele.series("r1", max_points=10)
    assert set(series) == set(lines)
    for key, (ts, vs) in series.items():
        a, b = lines[key]
        assert 5 <= ts.size <= 10, (key, ts.size)
        assert ts.size == vs.size and np.all(np.diff(ts) > 0)
        assert np.all((ts >= EPOCH) & (ts <= EPOCH + 30.0))
        # a bucket's mean of a straight line is the line at the bucket's mean time
        np.testing.assert_allclose(vs, a + b * (ts - EPOCH), rtol=1e-9, atol=1e-6)

    full = tele.series("r1", pattern="custom.*", max_points=2000)
    assert list(full) == [("custom.depth", "gw0")]
    assert np.all(full[("custom.depth", "gw0")][1] == 7.0)
    assert tele.series("other-run") == {}


def test_events_round_trip_with_extra_data_and_kind_filter(store: Store) -> None:
    tele = TelemetryStore(store)
    outlier = {"t": EPOCH + 2.0, "kind": "outlier", "case_id": "c1", "variant_id": "v1",
               "nodeid": "tests/test_a.py::test_x", "worker": "gw1", "metric": "sut.rss_mb",
               "value": 100.0, "baseline": 40.0, "score": 12.5, "message": "sut.rss_mb 100 vs 40",
               "spread": 1.5, "index": 3}
    leak = {"t": EPOCH + 3.0, "kind": "leak", "case_id": "c1", "variant_id": None,
            "nodeid": "tests/test_a.py::test_x", "worker": "", "metric": "sut.fds", "value": 80.0,
            "baseline": 20.0, "score": 3.1, "message": "sut.fds grows"}
    started = {"t": EPOCH + 1.0, "kind": "instance", "worker": "gw0", "message": "SUT started",
               "pid": 4242, "port": 38000, "config": {"cache": "lru"}}
    tele.append_events("r1", [outlier, leak, started])
    tele.append_events("r1", [])
    tele.append_events("r2", [dict(outlier, message="another run")])

    everything = tele.events("r1")
    assert [e["kind"] for e in everything] == ["instance", "outlier", "leak"]  # by time
    assert everything[1] == outlier
    assert everything[2] == leak
    instance = everything[0]
    assert {k: instance[k] for k in ("t", "kind", "worker", "message", "pid", "port", "config")} == started
    assert instance["metric"] is None and instance["value"] is None and instance["case_id"] is None

    assert tele.events("r1", kinds=("outlier", "leak")) == [outlier, leak]
    assert tele.events("r1", kinds=["instance"])[0]["pid"] == 4242
    assert tele.events("r1", kinds=["nothing"]) == []
    assert [e["message"] for e in tele.events("r2")] == ["another run"]


# -- history ----------------------------------------------------------------------------------


def test_history_is_the_telemetry_of_final_passed_results_of_finished_runs(store: Store) -> None:
    a, b = "tests/test_a.py::test_a", "tests/test_a.py::test_b"
    record(store, make_run("r1", 0), [make_result("r1", a, rss=41), make_result("r1", b, rss=51)])
    record(store, make_run("r2", 1), [
        make_result("r2", a, rss=42, duration=0.2),
        # a rerun: the first attempt is not final, only the passing retry counts
        make_result("r2", b, rss=999, outcome=Outcome.failed, final=False),
        make_result("r2", b, rss=52, attempt=2)])
    record(store, make_run("r3", 2), [make_result("r3", a, rss=43),
                                      make_result("r3", b, rss=888, outcome=Outcome.failed)])
    record(store, make_run("r4", 3), [make_result("r4", a, rss=777), make_result("r4", b, rss=777)],
           finished=False)  # still running (or crashed): not a baseline

    def rss(rows):
        return [(summary["sut.rss_mb"]["max"], duration) for summary, duration in rows]

    history = TelemetryStore(store).history()
    case_a, case_b = Case.from_nodeid(a).case_id, Case.from_nodeid(b).case_id
    assert set(history) == {case_a, case_b}
    assert rss(history[case_a]) == [(41, 0.1), (42, 0.2), (43, 0.1)]  # oldest first
    assert rss(history[case_b]) == [(51, 0.1), (52, 0.1)]
    assert history[case_a][0][0] == make_result("r1", a, rss=41).telemetry

    latest = TelemetryStore(store).history(per_case=2)
    assert rss(latest[case_a]) == [(42, 0.2), (43, 0.1)]
    assert rss(latest[case_b]) == [(51, 0.1), (52, 0.1)]
    only_b = TelemetryStore(store).history([case_b], per_case=1)
    assert list(only_b) == [case_b] and rss(only_b[case_b]) == [(52, 0.1)]
    assert TelemetryStore(store).history(["unknown"]) == {}


# -- migration --------------------------------------------------------------------------------


def test_a_schema_2_store_is_migrated_and_old_results_have_empty_telemetry(path: Path) -> None:
    nodeid = "tests/test_a.py::test_old"
    with Store.open(path) as store:
        record(store, make_run("old", 0), [make_result("old", nodeid, rss=40)])
    with duckdb.connect(str(path)) as conn:  # what a schema-2 testfleet wrote
        # DuckDB cannot drop a column of an indexed table: drop the indexes, put them back after
        conn.execute("DROP INDEX results_run_id")
        conn.execute("DROP INDEX results_nodeid")
        conn.execute("ALTER TABLE results DROP COLUMN telemetry")
        conn.execute("CREATE INDEX results_run_id ON results (run_id)")
        conn.execute("CREATE INDEX results_nodeid ON results (nodeid)")
        conn.execute("DROP TABLE telemetry")
        conn.execute("DROP TABLE events")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    with Store.open(path) as store:
        [old] = store.results("old")
        assert old.nodeid == nodeid and old.outcome == Outcome.passed
        assert old.telemetry == {}
        tele = TelemetryStore(store)
        assert tele.stats("old") == [] and tele.events("old") == []
        # the old result is part of the history, with nothing to judge but its duration
        assert tele.history() == {old.case_id: [({}, 0.1)]}
        record(store, make_run("new", 1), [make_result("new", nodeid, rss=45)])
        tele.append_series("new", ["gw0"], [EPOCH], ["sut.rss_mb"], [45.0])
        tele.append_events("new", [{"t": EPOCH, "kind": "instance", "message": "up"}])
        assert store.results("new")[0].telemetry["sut.rss_mb"]["max"] == 45
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == \
            (str(SCHEMA_VERSION),)
    assert SCHEMA_VERSION >= 3
    with Store.open(path, read_only=True) as store:
        assert [s.samples for s in TelemetryStore(store).stats("new")] == [1]
