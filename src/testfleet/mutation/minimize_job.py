"""Minimising failing variants during a run: :func:`testfleet.mutation.minimize.minimize` driven
by real executions on the fleet. Minimisation lives in :mod:`testfleet.mutation`: the search
(``minimize``), the value steps (``shrink``) and this driver.

``minimize`` is a plain search that calls ``still_fails(params)`` and waits for the answer. Here
each question becomes a variant (origin ``minimize``, its parent the failing variant) that the
orchestrator schedules like any other; the search runs on a thread of its own and blocks on the
answer, which the orchestrator hands over when the variant's final result arrives. One job runs
at a time, so the fleet is never flooded with speculative candidates, and a job asks one
question at a time (ddmin's candidates depend on the previous answers).

The orchestrator calls :func:`next_failure` to choose what to minimise next,
:meth:`MinimizeJob.pending` each loop turn to collect a question and :meth:`MinimizeJob.answer`
when its result is in (or at once, with the outcome this run already has for that exact
variant). A job stops early with the best found so far when the run is stopped.

**Which failure.** One test line often reports several defects (``assert r.status_code < 500,
r.text`` with a different server error text for each), so a failure is told apart by
:func:`failure_identity`: where it raised (the worker's fingerprint: file, line, exception type)
*and* its message's headline (the first line, or the exception line of a traceback that line
opens), normalised as failure clusters are
(:func:`testfleet.mutation.failure_text.normalise_message`: addresses, ids, times, paths and
numbers blanked, literal text kept). The variant's own text values, echoed back in the message
(``assert 'xy' == 'x'``), are blanked too: they change with every candidate, the failure does
not. Every distinct failure exploration found gets a job of its own (up to ``MAX_JOBS`` per run),
started from its simplest failing variant (fewest changed parameters).

A candidate counts as failing only when it fails *the same way*: with the identity of the
failure being minimised. A candidate that fails otherwise has found another defect; for this
search it passes (it is counted in the event as ``other_failures``), so the minimal variant
still shows the defect that was found rather than whichever failure is simplest to reach.
"""

from __future__ import annotations

import enum
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from testfleet.mutation.failure_text import headline, normalise_message
from testfleet.mutation.minimize import Minimized, changed, minimize
from testfleet.space.space import Space

__all__ = ["MAX_JOBS", "MinimizeJob", "failure_identity", "next_failure"]

#: Distinct failures minimised per run at most; each job is bounded by its own ``max_tests``,
#: so a run spends at most ``MAX_JOBS * max_tests`` executions on minimisation.
MAX_JOBS = 12
#: An unquoted echo of a parameter's text is blanked only from this length on (a short value
#: such as "a" also occurs inside the words of the message).
ECHO_CHARS = 6



class _Stop(enum.Enum):
    """The answer to every question once the search is told to stop."""

    STOP = "stop"


_STOP = _Stop.STOP


def _texts(params: Mapping[str, Any]) -> list[str]:
    """The text values of ``params``, longest first (not the items of a list or an order:
    those are names, and a message naming one says which step failed)."""
    return sorted({v for v in params.values() if isinstance(v, str) and v}, key=len, reverse=True)


def failure_identity(fingerprint: str | None, message: str | None,
                     params: Mapping[str, Any] | None = None) -> str:
    """Which failure this is: where it raised, and the normalised headline of its message (the
    first line, or the exception line of a traceback it opens) with the variant's own text
    values (``params``) blanked (see the module text)."""
    text = headline(message or "")
    for value in _texts(params or {}):
        quoted = {repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False)}
        for form in sorted(quoted, key=len, reverse=True):
            text = text.replace(form, "'<param>'")
        if len(value) >= ECHO_CHARS:  # a whole echo, not the start of a longer word
            text = re.sub(r"(?<!\w)%s(?!\w)" % re.escape(value), "<param>", text)
    # a long echo that pytest or the message cut short: a quoted literal the start of a value
    values = _texts(params or {})
    text = re.sub(r"'([^'\n]{%d,})(?:\.\.\.|…)?'" % ECHO_CHARS,
                  lambda m: "'<param>'" if any(v.startswith(m.group(1).rstrip(".…"))
                                               for v in values) else m.group(0), text)
    return f"{fingerprint}|{normalise_message(text)}"


def next_failure(found: Iterable[Mapping[str, Any]], done: set[str],
                 baseline_of: Callable[[Mapping[str, Any]], Mapping[str, Any]]
                 ) -> tuple[str, Mapping[str, Any]] | None:
    """The next failure to minimise, as ``(key, found entry)``: of the failures exploration
    found (``found``: nodeid, params, fingerprint, message) whose key (test and
    :func:`failure_identity`) is not in ``done``, the first found; of its failing variants, the
    one with the fewest parameters changed from the case's baseline (the earliest among equals).
    None when every failure is done or ``MAX_JOBS`` are."""
    if len(done) >= MAX_JOBS:
        return None
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in found:
        key = f"{entry.get('nodeid')}|" + failure_identity(
            entry.get("fingerprint"), entry.get("message"), entry.get("params"))
        if key not in done:
            groups.setdefault(key, []).append(entry)
    if not groups:
        return None
    key, entries = next(iter(groups.items()))
    return key, min(entries, key=lambda e: len(changed(dict(baseline_of(e)), dict(e["params"]))))


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
                 fixed: dict[str, Any], space: Space, max_tests: int = 100,
                 message: str | None = None) -> None:
        self.base, self.case_id, self.nodeid = base, case_id, nodeid
        self.variant_id, self.fingerprint = variant_id, fingerprint
        self.baseline, self.failing, self.fixed, self.space = _held(baseline, space), failing, fixed, space
        self.max_tests = max_tests
        # without a message (older callers), the fingerprint alone tells failures apart
        self.identity = None if message is None else failure_identity(fingerprint, message, failing)
        self.result: Minimized | None = None
        self.other_failures = 0  # candidates that failed, but not the way being minimised
        self.error: BaseException | None = None
        self._questions: queue.Queue[dict[str, Any]] = queue.Queue()
        self._answers: queue.Queue[bool | None | _Stop] = queue.Queue()
        self._asked: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="testfleet-minimize", daemon=True)

    def start(self) -> MinimizeJob:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def pending(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next candidate to run, if the search is waiting on one not yet taken."""
        if self._asked is not None:
            return None
        try:
            params = self._questions.get(timeout=timeout) if timeout else self._questions.get_nowait()
        except queue.Empty:
            return None
        self._asked = params
        return {**self.fixed, **params}

    def answer(self, fails: bool | None, fingerprint: str | None = None,
               message: str | None = None) -> None:
        """The outcome of the pending candidate: whether it failed, where, and its message."""
        asked, self._asked = self._asked or {}, None
        if fails and self.fingerprint is not None and fingerprint != self.fingerprint:
            self.other_failures += 1
            fails = False
        elif fails and self.identity is not None and message is not None \
                and failure_identity(fingerprint, message, asked) != self.identity:
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
                "max_tests": self.max_tests,
                "complete": data.get("complete", False), "fingerprint": self.fingerprint,
                "failure": self.identity,
                "other_failures": self.other_failures,
                "error": None if self.error is None else repr(self.error)}
