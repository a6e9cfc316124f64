"""Minimising failing variants during a run: :func:`testfleet.mutation.minimize.minimize` driven
by real executions on the fleet.

``minimize`` is a plain search that calls ``still_fails(params)`` and waits for the answer. Here
each question becomes a variant (origin ``minimize``, its parent the failing variant) that the
orchestrator schedules like any other; the search runs on a thread of its own and blocks on the
answer, which the orchestrator hands over when the variant's final result arrives. One job runs
at a time, so the fleet is never flooded with speculative candidates, and a job asks one
question at a time (ddmin's candidates depend on the previous answers).

The orchestrator calls :meth:`MinimizeJob.pending` each loop turn to collect a question and
:meth:`MinimizeJob.answer` when its result is in (or at once, with the outcome this run already
has for that exact variant). A job stops early with the best found so far when the run is
stopped.

A candidate counts as failing only when it fails *the same way*: with the failure fingerprint
of the variant being minimised (where it raised: file, line and exception type). A candidate
that fails somewhere else has found another defect; for this search it passes (it is counted in
the event as ``other_failures``), so the minimal variant still shows the defect that was found
rather than whichever failure is simplest to reach.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from testfleet.mutation.minimize import Minimized, minimize
from testfleet.space.space import Space

__all__ = ["MinimizeJob"]

_STOP = object()


def _held(baseline: dict[str, Any], space: Space) -> dict[str, Any]:
    """The baseline as the space holds it. A collected parameter can come back as its text (an
    order as ``"['get', 'patch']"``); every candidate built on it would be outside the space and
    never run, so the search would keep changes that do not matter. The space's own baseline
    value, which is what the baseline item ran with, stands in for it."""
    own = space.baseline()
    return {name: own[name] if name in own and not space.dimensions[name].contains(value)
            else value for name, value in baseline.items()}


class MinimizeJob:
    def __init__(self, *, base: int, case_id: str, nodeid: str, variant_id: str,
                 fingerprint: str | None, baseline: dict[str, Any], failing: dict[str, Any],
                 fixed: dict[str, Any], space: Space, max_tests: int = 100) -> None:
        self.base, self.case_id, self.nodeid = base, case_id, nodeid
        self.variant_id, self.fingerprint = variant_id, fingerprint
        self.baseline, self.failing, self.fixed, self.space = _held(baseline, space), failing, fixed, space
        self.max_tests = max_tests
        self.result: Minimized | None = None
        self.other_failures = 0  # candidates that failed, but not the way being minimised
        self.error: BaseException | None = None
        self._questions: queue.Queue[dict[str, Any]] = queue.Queue()
        self._answers: queue.Queue[Any] = queue.Queue()
        self._asked = False
        self._thread = threading.Thread(target=self._run, name="testfleet-minimize", daemon=True)

    def start(self) -> MinimizeJob:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def pending(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next candidate to run, if the search is waiting on one not yet taken."""
        if self._asked:
            return None
        try:
            params = self._questions.get(timeout=timeout) if timeout else self._questions.get_nowait()
        except queue.Empty:
            return None
        self._asked = True
        return {**self.fixed, **params}

    def answer(self, fails: bool | None, fingerprint: str | None = None) -> None:
        """The outcome of the pending candidate: whether it failed, and where."""
        self._asked = False
        if fails and self.fingerprint is not None and fingerprint != self.fingerprint:
            self.other_failures += 1
            fails = False
        self._answers.put(fails)

    def stop(self) -> None:
        """Let a waiting search finish at once with what it has (answers: 'could not tell')."""
        self._answers.put(_STOP)

    def _ask(self, params: dict[str, Any]) -> bool | None:
        self._questions.put(params)
        answer = self._answers.get()
        if answer is _STOP:
            self._answers.put(_STOP)  # every later question gets the same answer
            return None
        return answer

    def _run(self) -> None:
        try:
            self.result = minimize(self.baseline, self.failing, self._ask, space=self.space,
                                   max_tests=self.max_tests)
        except BaseException as exc:  # noqa: BLE001 - reported by the orchestrator, never lost
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def to_event(self) -> dict[str, Any]:
        found = self.result
        data = found.to_dict() if found is not None else {}
        changes = data.get("changes", {})
        text = ", ".join(f"{k}={v[1]!r}" for k, v in changes.items()) or "(the baseline itself)"
        return {"kind": "minimized", "case_id": self.case_id, "variant_id": self.variant_id,
                "nodeid": self.nodeid, "metric": None, "value": None, "baseline": None,
                "score": None, "message": f"minimal failing change: {text}"
                + ("" if found is None or found.complete else " (search budget spent)"),
                "minimal_params": {**self.fixed, **data.get("params", {})},
                "changes": changes, "executions": data.get("executions", 0),
                "complete": data.get("complete", False), "fingerprint": self.fingerprint,
                "other_failures": self.other_failures,
                "error": None if self.error is None else repr(self.error)}
