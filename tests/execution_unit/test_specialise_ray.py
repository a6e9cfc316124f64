"""What a grant and a release do on Ray (execution/specialise_ray.py), against a cluster double
that keeps the books Ray keeps: free CPUs, and the node each actor lives on. The real cluster is
in tests/execution/test_ray_backend.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testfleet.errors import SettingsError
from testfleet.execution.specialisation import SpecialiseSettings
from testfleet.execution.specialise_ray import RayActuator
from testfleet.settings import load_settings


@dataclass
class Books:
    free: float
    nodes: dict[str, str] = field(default_factory=dict)  # worker -> node
    asked: list[float] = field(default_factory=list)
    reserved: dict[str, float] = field(default_factory=dict)  # worker -> cpus
    retired: list[tuple[str, str]] = field(default_factory=list)

    def free_cpus(self) -> float:
        return self.free

    def node_of(self, worker_id: str) -> str | None:
        return self.nodes.get(worker_id)

    def ask_cpus(self, cpus: float) -> None:
        self.asked.append(cpus)

    def spawn(self, cpus: float, node: str | None) -> str:
        worker = f"gw{len(self.nodes)}"
        self.nodes[worker] = node or "anywhere"
        self.reserved[worker] = cpus
        self.free -= cpus
        return worker

    def retire(self, worker: str, why: str) -> None:
        self.retired.append((worker, why))
        self.free += self.reserved.pop(worker)


def actuator(books: Books, cpus: float = 1.0) -> RayActuator:
    return RayActuator(books, books.spawn, books.retire, cpus)


def test_a_grant_reserves_cpus_beside_the_instances_worker_and_a_release_gives_them_back() -> None:
    books = Books(free=2.0, nodes={"gw0": "node-a", "gw1": "node-b"})
    ray = actuator(books)
    done = ray.grant("sut.cache=off", "gw1")
    assert books.reserved == {"gw2": 1.0} and books.nodes["gw2"] == "node-b" and books.free == 1.0
    assert done == ["ray: started gw2, reserving 1 CPU(s) of the 2 free beside gw1 (node node-b)"]
    assert ray.grant("sut.cache=off", "gw1") == []  # one specialist an instance
    assert books.reserved == {"gw2": 1.0}
    done = ray.release("sut.cache=off")
    assert books.retired == [("gw2", "the specialist of sut.cache=off is released")] and books.free == 2.0
    assert "gw2 stops after its current test" in done[0]
    assert ray.release("sut.cache=off") == []  # released once


def test_too_few_free_cpus_start_nothing_ask_the_autoscaler_and_say_skipped() -> None:
    books = Books(free=0.5, nodes={"gw0": "node-a"})
    ray = actuator(books, cpus=2)
    done = ray.grant("gw0", "gw0")
    assert books.reserved == {} and books.asked == [2]
    assert done[0].startswith("ray: skipped, the cluster has 0.5 free CPU(s)")
    assert ray.release("gw0") == []  # nothing was granted, nothing to give back


def test_a_worker_that_does_not_say_where_it_lives_gets_a_specialist_anywhere() -> None:
    books = Books(free=1.0)
    done = actuator(books).grant("gw0", "gw0")  # gw0 unknown to the cluster: no node
    assert books.nodes == {"gw0": "anywhere"} and "beside" not in done[0]


@pytest.mark.parametrize(("value", "ok"), [(0.5, True), (1, True), (2, True), (1.5, False), (0, False)])
def test_ray_cpus_takes_fractions_up_to_one_and_whole_numbers_above(tmp_path: Path, value: float, ok: bool) -> None:
    (tmp_path / "testfleet.toml").write_text(f"[specialise]\nray_cpus = {value}\n")
    if ok:
        read, _ = load_settings([], {}, cwd=tmp_path)
        assert read.specialise.ray_cpus == value
        return
    with pytest.raises(SettingsError) as caught:
        load_settings([], {}, cwd=tmp_path)
    assert "ray_cpus" in str(caught.value) and "testfleet.toml" in str(caught.value)
    assert SpecialiseSettings().ray_cpus == 1.0
