"""``--resume``: the plan of a run that goes on where it was interrupted.

The run's earlier results come in the plan (:attr:`~testfleet.execution.plan.RunPlan.resume`).
A test with a final result is not run again; its results join the run's results as they are, so
the counts, the summary and the reports see every test once. A test that has only non-final
attempts (it was being rerun when the coordinator died) runs again: its next attempt numbers on
from the last one, and a failure before counts towards flakiness, as in an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from testfleet.model import FAILURE_OUTCOMES, Outcome, Result

if TYPE_CHECKING:
    from testfleet.execution.coordinator.interfaces import Host


def resume(host: Host, prior: list[Result], nodeids: list[str], selected: Sequence[int],
           skipped: list[dict[str, Any]]) -> list[int]:
    """Take ``prior`` into the run's recording; of ``selected``, those still to run. Modules
    skipped at collection that were already recorded are removed from ``skipped``."""
    recording = host.recording
    done = {r.nodeid for r in prior if r.final}
    position = {nodeid: index for index, nodeid in enumerate(nodeids)}
    for result in prior:
        recording.results.append(result)
        index = position.get(result.nodeid)
        if index is None or result.nodeid in done:
            continue
        recording.attempts[index] = max(recording.attempts.get(index, 0), result.attempt)
        if result.outcome in FAILURE_OUTCOMES:
            recording.failed_once.add(index)
        if result.outcome is Outcome.crashed:  # a test that crashed two workers is not retried
            recording.crashes[index] = recording.crashes.get(index, 0) + 1
    skipped[:] = [entry for entry in skipped if entry["nodeid"] not in done]
    remaining = [index for index in selected if nodeids[index] not in done]
    kept = len(selected) - len(remaining)
    message = (f"resuming run {host.run_info.run_id}: {kept} test{'s' if kept != 1 else ''} already "
               f"had a result, {len(remaining)} to run")
    host.say(message)
    recording.add_events([{"kind": "resumed", "message": message, "kept": kept, "to_run": len(remaining),
                           "results_kept": len(prior)}])
    return remaining


__all__ = ["resume"]
