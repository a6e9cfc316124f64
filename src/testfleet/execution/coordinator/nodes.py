"""Ray-node quarantine applied to a run (the rule is :class:`~testfleet.execution.recovery.EscalationPolicy`'s).

Each opening of a seat's worker or instance breaker is counted against the Ray node its worker
ran on (:meth:`Backend.node_of <testfleet.execution.backends.base.Backend.node_of>`; a backend
without nodes answers None and nothing happens here). Once a node's openings across its seats
reach ``quarantine_after``, the backend excludes it from the placement of every later worker
(:meth:`Backend.exclude_node`), the seats whose live workers are on it are quarantined with it
(their workers stop after their current test; what they held goes back to the queue), and a
worker that comes up on it afterwards (placed before the exclusion) is turned away with its seat.
A node the backend cannot exclude (the cluster's last one) is spared: the level-5 ``recovery``
event says so, and it is not asked again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testfleet.execution.coordinator.fleet import Slot
    from testfleet.execution.coordinator.recovering import Recovery


class NodeQuarantine:
    def __init__(self, recovery: Recovery) -> None:
        self.recovery = recovery
        self.policy = recovery.policy

    def _node(self, worker_id: str) -> str | None:
        return self.recovery.host.backend.node_of(worker_id)

    def opened(self, seat: str, worker_id: str | None, reason: str) -> None:
        """A breaker of ``seat`` opened on the result of ``worker_id``: count it against its node,
        and quarantine the node when the rule says so."""
        host = self.recovery.host
        if worker_id is None:  # the seat's latest worker
            latest = [s.worker_id for s in host.fleet.slots.values() if s.seat == seat]
            worker_id = latest[-1] if latest else None
        node = self._node(worker_id) if worker_id is not None else None
        if node is None:
            return
        step = self.policy.node_opened(node, seat, reason)
        if step is None:
            return
        why_not = host.backend.exclude_node(node)
        if why_not is not None:
            self.policy.spared_nodes.add(node)
            self.recovery._log(replace(step, reason=f"{step.reason}; not quarantined: {why_not}"))
            return
        # only workers that said hello: an actor still being placed has no node to ask yet
        seats = sorted({s.seat for s in host.fleet.slots.values()
                        if s.ready and not s.gone and self._node(s.worker_id) == node})
        self.policy.quarantine_node(node, seats)
        moved = sum(self.recovery._vacate(s, f"its node {node} is quarantined") for s in seats)
        tail = ""
        if seats:
            tail = f"; its seat{'s' if len(seats) != 1 else ''} {', '.join(seats)} quarantined with it"
            tail += f", {moved} test{'s' if moved != 1 else ''} moved" if moved else ""
        self.recovery._log(replace(step, reason=step.reason + tail))

    def turned_away(self, slot: Slot) -> bool:
        """A worker that came up on a quarantined node (placed before it was excluded): its seat is
        quarantined with the node (True: it must leave)."""
        if not self.policy.quarantined_nodes:
            return False
        node = self._node(slot.worker_id)
        if node not in self.policy.quarantined_nodes:
            return False
        self.policy.quarantine_node(node, [slot.seat])
        self.recovery.host.say(f"worker {slot.worker_id} came up on quarantined node {node}: "
                               f"its seat {slot.seat} is quarantined with it")
        return True
