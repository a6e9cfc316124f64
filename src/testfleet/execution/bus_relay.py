"""The coordinator's bus through a Ray actor: on Ray, every bus message also reaches the run's job.

On the Ray backend the coordinator starts one named actor, :data:`BUS_ACTOR`, in its job's
namespace, and the bus (:meth:`testfleet.execution.bus.Bus.tap`) sends it each message's event row
as it is published (one fire-and-forget call each: the loop never waits on it). Ray runs an
actor's calls from one caller in order, so the actor holds the rows in the bus's order. Any task
or actor of the run's job (the workers' tests included) reads them live with :func:`read_bus`,
e.g. to see which failures were replicated so far; a driver outside the job reaches it through the
job's namespace.

The actor is not detached: it ends with the run's job (``ray.shutdown`` when the run ends), so
runs leave nothing behind on a shared cluster. The rows are the same as the store's, which stays
the record (``testfleet show RUN --events``); the actor is a live view, lost with the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BUS_ACTOR", "BusLog", "ray_relay", "read_bus"]

BUS_ACTOR = "testfleet-bus"


class BusLog:
    """The actor's state: the rows of the bus's messages, in publication order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def append(self, rows: list[dict[str, Any]]) -> int:
        self.rows.extend(rows)
        return len(self.rows)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The rows after bus sequence number ``seq`` (0: all of them)."""
        return [row for row in self.rows if int(row.get("bus_seq") or 0) > seq]


def ray_relay() -> Callable[[list[dict[str, Any]]], None]:
    """Start the run's bus actor (Ray must be initialised) and return the sink that feeds it."""
    import ray

    # num_cpus=0: the actor must never keep a worker of the run from a CPU
    actor: Any = ray.remote(num_cpus=0)(BusLog).options(name=BUS_ACTOR).remote()

    def send(rows: list[dict[str, Any]]) -> None:
        if ray.is_initialized():  # a message published after the job ended has no actor to reach
            actor.append.remote(rows)

    return send


def read_bus(since: int = 0, timeout: float = 30.0, namespace: str | None = None) -> list[dict[str, Any]]:
    """From a task or actor of the run's job (or a driver in its ``namespace``): the bus's rows
    published so far after ``since``."""
    import ray

    actor = ray.get_actor(BUS_ACTOR, namespace=namespace)
    rows: list[dict[str, Any]] = ray.get(actor.since.remote(since), timeout=timeout)
    return rows
