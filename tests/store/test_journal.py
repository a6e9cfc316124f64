"""The write-ahead journal: what a killed coordinator had received reaches the store, once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.model import Outcome, Result, Run, RunStatus
from testfleet.store.db import Store
from testfleet.store.journal import Journal, journal_dir, read

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def result(n: int, run_id: str = "r1", **kw: object) -> Result:
    values: dict[str, object] = {
        "run_id": run_id, "variant_id": f"v{n}", "case_id": f"c{n}", "nodeid": f"t.py::test_{n}", "worker": "gw0",
        "outcome": Outcome.passed, "duration": 0.25, "started_at": T0, "finished_at": T0 + timedelta(seconds=n),
        "when": "call", "message": f"message {n} with \"quotes\" and \u00e9"}
    values |= kw
    return Result(**values, categories=[Outcome(values["outcome"]).value])


@given(st.integers(min_value=0, max_value=4000))
@settings(max_examples=30, deadline=None)
def test_a_journal_cut_anywhere_reads_as_a_prefix_of_what_was_written(cut: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "s.duckdb", "r1")
        written = [result(n, outcome=Outcome.failed if n % 3 else Outcome.passed) for n in range(6)]
        journal.append(written[:4], [{"kind": "resumed", "t": 1.5, "message": "m"}])
        journal.append(written[4:])
        journal.close()
        data = journal.path.read_bytes()
        journal.path.write_bytes(data[:cut])  # a kill mid-write leaves any prefix of the bytes
        results, events = read(journal.path)
    assert results == written[:len(results)]
    assert events in ([], [{"kind": "resumed", "t": 1.5, "message": "m"}])
    if cut >= len(data):
        assert len(results) == 6 and len(events) == 1


def test_a_checkpoint_empties_the_journal_and_a_clean_close_removes_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "s.duckdb", "r1")
    journal.append([result(1)])
    assert journal.path.parent == journal_dir(tmp_path / "s.duckdb") == tmp_path / "s.duckdb.journal"
    assert read(journal.path)[0] == [result(1)]
    journal.checkpoint()
    assert journal.path.read_bytes() == b""
    journal.append([result(2)])
    assert read(journal.path)[0] == [result(2)]
    journal.checkpoint()
    journal.close()
    assert not journal.path.exists() and not journal.path.parent.exists()


def test_a_journal_with_lines_not_yet_in_the_store_outlives_close(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "s.duckdb", "r1")
    journal.append([result(1)])
    journal.close()
    assert read(journal.path)[0] == [result(1)]


def _dead_run(path: Path, run_id: str = "r1") -> None:
    """A run begun here whose coordinator is then recorded as one that is gone."""
    with Store.open(path) as store:
        store.begin_run(Run(run_id=run_id, started_at=T0, workers=2))
        store.write("forget the coordinator", [("UPDATE runs SET coordinator_pid = NULL WHERE run_id = $1",
                                                [run_id])])


def test_opening_the_store_replays_a_dead_runs_journal_once_then_closes_the_run(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    _dead_run(path)
    with Store.open(path) as store:  # the store already has 1 and 2: a kill between commit and truncation
        store.append_results([result(1), result(2)])
    journal = Journal(path, "r1")
    journal.append([result(1), result(2), result(3), result(4, outcome=Outcome.failed)],
                   [{"kind": "resumed", "t": 7.0, "message": "went on"}])
    journal.close()
    with Store.open(path) as store:
        stored = store.results("r1")
        run = store.get_run("r1")
        events = store.query("SELECT kind, message FROM events WHERE run_id = 'r1'")
    assert sorted(r.nodeid for r in stored) == [f"t.py::test_{n}" for n in (1, 2, 3, 4)]
    assert [r for r in stored if r.nodeid.endswith("_3")] == [result(3)]  # as it was written
    assert events == [("resumed", "went on")]
    assert run.status == RunStatus.interrupted and run.counts == {"passed": 3, "failed": 1}
    assert not journal.path.exists()
    with Store.open(path) as store:  # a second open finds nothing more to replay
        assert len(store.results("r1")) == 4


def test_the_journal_of_a_run_whose_coordinator_lives_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.begin_run(Run(run_id="live", started_at=T0, workers=1))  # this process: alive
    journal = Journal(path, "live")
    journal.append([result(1, run_id="live")])
    with Store.open(path) as store:
        assert store.results("live") == []
        assert store.get_run("live").status == RunStatus.running
    assert read(journal.path)[0] == [result(1, run_id="live")]
    journal.close()


# A coordinator stand-in: journals each arrival, commits every 4th batch to DuckDB and truncates the
# journal, prints how many results it has journalled, forever (until it is killed).
_WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from testfleet.model import Outcome, Result, Run
    from testfleet.store.db import Store
    from testfleet.store.journal import Journal

    store = Store.open(sys.argv[1])
    store.begin_run(Run(run_id="w", started_at=datetime.now(UTC), workers=1))
    journal, buffer, n = Journal(sys.argv[1], "w"), [], 0
    while True:
        batch = [Result(run_id="w", variant_id=f"v{n + i}", case_id="c", nodeid=f"t::{n + i}", worker="gw0",
                        outcome=Outcome.passed, finished_at=datetime.now(UTC)) for i in range(5)]
        n += 5
        journal.append(batch)
        buffer += batch
        print(n, flush=True)
        if n % 20 == 0:
            store.append_results(buffer)
            journal.checkpoint()
            buffer = []
""")


@pytest.mark.slow  # real processes, killed
def test_after_kill_9_at_random_moments_the_store_opens_with_each_journalled_result_once(
        tmp_path: Path) -> None:
    rng = random.Random(19)
    for trial in range(2):
        path = tmp_path / f"s{trial}.duckdb"
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        wanted = rng.randrange(20, 400)
        journalled = 0
        while journalled < wanted:
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            journalled = int(line)
        time.sleep(rng.uniform(0, 0.05))  # it goes on writing: the kill lands anywhere
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        journalled = max([journalled, *(int(x) for x in proc.stdout.read().split())])
        with Store.open(path) as store:
            stored = [r.nodeid for r in store.results("w")]
        assert len(stored) == len(set(stored)), "a result stored twice"
        assert len(stored) >= journalled, (len(stored), journalled)
