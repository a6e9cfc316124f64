"""Fault rules of a run: when a failed test is retried, and how a lost test is reported.

:class:`RetryPolicy` is the test-level budget that :class:`~testfleet.execution.recovery.EscalationPolicy`
(levels 1 and 2 of escalating recovery) applies; breakers and the higher levels live there.

A test that fails is rerun while its attempts are within ``--reruns``. A test that crashed its
worker is retried once whatever ``--reruns`` says (the crash may have been the machine's, not the
test's), and never after crashing a worker twice. A test whose worker died under it is reported
``crashed`` with the exit code or signal, or ``timeout`` when the coordinator killed it, with the
faulthandler traceback the worker wrote on its way down, trimmed of harness frames.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any

from testfleet.model import Outcome

CRASHES_BEFORE_GIVING_UP = 2
_HARNESS_FRAMES = ("/_pytest/", "/pluggy/", "/testfleet/execution/", "<frozen runpy>")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited (status unknown)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by signal {-code} ({name})"
    return f"exited with code {code}"


def trim_fault_dump(text: str) -> str:
    """faulthandler's dump without the frames of pytest, pluggy and testfleet's own harness."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("File ") and any(marker in stripped for marker in _HARNESS_FRAMES):
            continue
        kept.append(line)
    return "\n".join(kept)


@dataclass(frozen=True)
class RetryPolicy:
    reruns: int = 0

    def should_retry(self, outcome: Outcome, attempts: int, crashes: int) -> bool:
        """``attempts`` and ``crashes`` count the attempt just finished."""
        if outcome is Outcome.crashed:
            return crashes < CRASHES_BEFORE_GIVING_UP
        return attempts <= self.reruns


def lost_test_payload(*, timed_out: bool, nodeid: str, worker_id: str, code: int | None,
                      timeout: float | None, dump: str, ran_for: float | None) -> dict[str, Any]:
    """The result payload of a test whose worker died under it (shaped like a worker's own)."""
    if timed_out:
        outcome, headline = Outcome.timeout, f"Timeout: {nodeid} ran longer than {timeout:g}s"
        detail = f"{headline}; worker {worker_id} was killed and replaced."
    else:
        outcome, headline = Outcome.crashed, f"worker {worker_id} crashed: {describe_exit(code)}"
        detail = f"{headline} while running {nodeid}."
    if dump:
        detail += "\n\nTraceback of the worker at the end (faulthandler):\n" + dump
    stop = time.time()
    duration = ran_for or 0.0
    return {
        "outcome": outcome.value, "categories": [outcome.value], "when": "call",
        "message": headline, "longrepr": detail, "start": stop - duration, "stop": stop,
        "duration": duration, "fingerprint": f"{outcome.value}:{code}",
        "phases": {"call": {"outcome": "failed", "duration": duration, "longrepr": detail}},
    }
