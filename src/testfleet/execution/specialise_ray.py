"""What a grant and a release do on Ray: a worker actor with a CPU reservation of its own.

Ray cannot change a live actor's resources, and it does not cap a process at its ``num_cpus``:
a reservation is what Ray's scheduler allocates, and what no other actor or task of the cluster
may then take. So on Ray a grant gives the stressed instance more of the cluster in the unit Ray
allocates:

* **grant**: one more worker actor, the instance's *specialist*, that reserves ``ray_cpus`` CPUs.
  It is placed on the node of the worker that last ran the instance when that node has the CPUs
  free (a soft node affinity), anywhere else otherwise. It takes tests from the run's queue like
  any worker, while the explorer aims ``share`` of the explored variants at the granted
  configuration (``Explorer.steer``): more workers aimed at that configuration.
* **release**: the specialist is told to stop after its current test; what it held goes back to
  the queue, and its reservation goes back to the cluster when the actor ends.
* A cluster with fewer free CPUs than ``ray_cpus`` gives nothing: the grant asks Ray's autoscaler
  for them (a cluster without one ignores the request) and says so, once, as a skip.

Every method returns the lines that say what was done, as the local actuator's do
(:mod:`testfleet.execution.specialise_local`); the coordinator publishes them with the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["RayActuator", "RayCluster"]


class RayCluster(Protocol):
    """What the actuator asks of the Ray backend."""

    def free_cpus(self) -> float: ...

    def node_of(self, worker_id: str) -> str | None: ...

    def ask_cpus(self, cpus: float) -> None: ...


@dataclass
class RayActuator:
    cluster: RayCluster
    #: start a worker actor reserving (cpus, on node or None) -> its worker id
    spawn: Callable[[float, str | None], str]
    #: tell a worker to stop after its current test (worker id, why)
    retire: Callable[[str, str], None]
    cpus: float = 1.0
    specialists: dict[str, str] = field(default_factory=dict)  # granted instance -> its specialist

    def grant(self, instance: str, worker: str | None) -> list[str]:
        """One specialist for ``instance`` (last run by ``worker``), if the cluster has the CPUs."""
        if instance in self.specialists:
            return []
        free = self.cluster.free_cpus()
        if free < self.cpus:
            self.cluster.ask_cpus(self.cpus)
            return [f"ray: skipped, the cluster has {free:g} free CPU(s) and a specialist reserves "
                    f"{self.cpus:g}; asked the autoscaler for them"]
        node = self.cluster.node_of(worker) if worker else None
        worker_id = self.spawn(self.cpus, node)
        self.specialists[instance] = worker_id
        where = f" beside {worker} (node {node[:12]})" if node and worker else ""
        return [f"ray: started {worker_id}, reserving {self.cpus:g} CPU(s) of the {free:g} free{where}"]

    def release(self, instance: str) -> list[str]:
        """The instance's specialist stops after its test; its reservation returns to the cluster."""
        worker_id = self.specialists.pop(instance, None)
        if worker_id is None:
            return []
        self.retire(worker_id, f"the specialist of {instance} is released")
        return [f"ray: {worker_id} stops after its current test; its {self.cpus:g} CPU(s) go back to the cluster"]
