"""The scheduler's order and batching: what a user relies on when a suite has history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from testfleet.execution.scheduler import Scheduler, scope_of


def drain(scheduler: Scheduler, worker: str = "gw0", alive: int = 1) -> list[list[int]]:
    batches = []
    while (batch := scheduler.next_batch(worker, alive=alive)):
        batches.append(batch)
    return batches


def test_previously_failed_tests_come_first_then_slowest_first():
    nodeids = ["t.py::fast", "t.py::slow", "t.py::failed", "t.py::medium"]
    history = {"t.py::fast": 0.001, "t.py::slow": 2.0, "t.py::failed": 0.001, "t.py::medium": 0.3}
    order = [i for b in drain(Scheduler(nodeids, workers=1, history=history, failed={"t.py::failed"}))
             for i in b]
    assert [nodeids[i] for i in order] == ["t.py::failed", "t.py::slow", "t.py::medium", "t.py::fast"]


def test_failed_first_can_be_turned_off():
    nodeids = ["t.py::a", "t.py::b"]
    order = [i for b in drain(Scheduler(nodeids, workers=1, failed={"t.py::b"}, failed_first=False)) for i in b]
    assert order == [0, 1]


def test_unknown_tests_count_as_the_mean_of_known_ones():
    nodeids = ["t.py::known_slow", "t.py::unknown", "t.py::known_fast"]
    history = {"t.py::known_slow": 1.0, "t.py::known_fast": 0.01}
    scheduler = Scheduler(nodeids, workers=1, history=history)
    assert scheduler.estimates[1] == (1.0 + 0.01) / 2
    order = [i for b in drain(scheduler) for i in b]
    assert order == [0, 1, 2]


def test_tests_of_similar_length_keep_collection_order_for_fixture_locality():
    nodeids = [f"t.py::t{i}" for i in range(6)]
    history = {n: 0.0001 * (6 - i) for i, n in enumerate(nodeids)}  # all well under a millisecond
    order = [i for b in drain(Scheduler(nodeids, workers=1, history=history)) for i in b]
    assert order == list(range(6))


def test_batches_shrink_towards_the_end():
    scheduler = Scheduler([f"t.py::t{i}" for i in range(4000)], workers=2)
    sizes = [len(b) for b in drain(scheduler)]
    assert sum(sizes) == 4000
    assert sizes[0] > 100 and sizes[-1] == 1
    assert sizes == sorted(sizes, reverse=True)


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=8), st.sampled_from(["load", "loadscope", "loadfile"]))
def test_every_test_is_handed_out_exactly_once(durations, workers, dist):
    nodeids = [f"pkg/t{i % 7}.py::C{i % 3}::test_{i}" for i in range(len(durations))]
    scheduler = Scheduler(nodeids, workers=workers, dist=dist, history=dict(zip(nodeids, durations)))
    handed = [i for b in drain(scheduler) for i in b]
    assert sorted(handed) == list(range(len(nodeids)))
    assert scheduler.empty


def test_loadfile_and_loadscope_keep_groups_in_one_batch():
    nodeids = ["a.py::T::x", "a.py::T::y", "a.py::z", "b.py::w", "b.py::v"]
    for dist, groups in (("loadfile", [{0, 1, 2}, {3, 4}]), ("loadscope", [{0, 1}, {2}, {3}, {4}])):
        batches = drain(Scheduler(nodeids, workers=4, dist=dist))
        for group in groups:
            assert any(group <= set(b) for b in batches), (dist, group, batches)
    assert scope_of("a.py::T::x[1]", "loadscope") == "a.py::T"
    assert scope_of("a.py::f[1]", "loadscope") == "a.py"


def test_a_rerun_goes_to_another_worker_when_one_is_alive():
    scheduler = Scheduler(["t.py::a"], workers=2)
    drain(scheduler)
    scheduler.rerun(0, avoid="gw0")
    assert scheduler.next_batch("gw0", alive=2) == []
    assert scheduler.next_batch("gw1", alive=2) == [0]
    scheduler.rerun(0, avoid="gw0")
    assert scheduler.next_batch("gw0", alive=1) == [0]  # no other worker left: run it here


def test_requeued_work_of_a_lost_worker_runs_next_and_cancel_drops_everything():
    scheduler = Scheduler([f"t.py::t{i}" for i in range(10)], workers=1)
    first = scheduler.next_batch("gw0", alive=1)
    scheduler.requeue(first[1:])
    assert scheduler.next_batch("gw0", alive=1)[: len(first) - 1] == first[1:]
    scheduler.rerun(0, None)
    dropped = scheduler.cancel()
    assert 0 in dropped and scheduler.empty
