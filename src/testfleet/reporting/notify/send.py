"""Sending a finished run's notifications: filter, deliver (targets in parallel), record, warn.

Called once by ``testfleet run`` after the reports are written. Nothing here can change the
run's result or exit code: every failure, even a bug in a notifier, ends as a failed delivery,
which is stored (an ``events`` row of kind ``delivery`` with the target, the attempts and the
error) and said in ONE warning line on stderr. Successful deliveries are stored too. Secrets read
from the environment are blanked out of every error text before it is shown or stored.

All targets share one deadline (``deadline`` seconds from the start); each runs in its own thread,
so a slow endpoint does not hold up the others. The store is only written from the calling thread
(a DuckDB connection is not shared between threads).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from testfleet.reporting.notify.config import NotifySettings, NotifyTarget
from testfleet.reporting.notify.delivery import DeliveryError, Tries
from testfleet.reporting.notify.summary import RunSummary, summarize

DELIVERY_EVENT = "delivery"
ISSUE_EVENT = "tracker_issue"


@dataclass
class DeliveryResult:
    target: str
    via: str
    ok: bool
    attempts: int
    seconds: float
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def event(self) -> dict[str, Any]:
        data = {key: value for key, value in self.detail.items() if key != "stdout"}
        return {"kind": DELIVERY_EVENT, "t": time.time(), "message": self.error or "",
                "target": self.target, "via": self.via, "ok": self.ok, "attempts": self.attempts,
                "seconds": round(self.seconds, 3), "error": self.error, **data}

    def warning(self, run_id: str) -> str:
        tries = f"after {self.attempts} attempt{'s' if self.attempts != 1 else ''}" if self.attempts \
            else "(nothing sent)"
        return (f"WARNING: notification {self.target} ({self.via}) not delivered {tries}: {self.error}; "
                f"the run's result is unchanged (stored with run {run_id})")


def deliver_all(settings: NotifySettings, summary: RunSummary, env: Mapping[str, str] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> list[DeliveryResult]:
    """Deliver ``summary`` to every target whose ``when`` matches it; never raises."""
    env = os.environ if env is None else env
    chosen = [(label, target) for label, target in settings.labelled() if summary.matches(target.when)]
    if not chosen:
        return []
    deadline = time.monotonic() + settings.delivery.deadline
    from testfleet.plugins import registry  # the built-in kinds come through the plugin hook

    notifiers = registry().notifiers()  # asked here: the threads below only read it

    def one(item: tuple[str, NotifyTarget]) -> DeliveryResult:
        label, target = item
        tries = Tries(settings.delivery, deadline, sleep=sleep)
        started = time.monotonic()
        try:
            detail = dict(notifiers[target.kind].deliver(target, summary, env, tries))
            return DeliveryResult(label, target.kind, True, tries.attempts, time.monotonic() - started,
                                  detail=detail)
        except DeliveryError as exc:
            error, detail = str(exc), exc.detail
        except Exception as exc:  # a notifier's bug is a failed delivery, never a failed run
            error, detail = f"{type(exc).__name__}: {exc}", {}
        return DeliveryResult(label, target.kind, False, tries.attempts, time.monotonic() - started,
                              _redact(error, target, env), detail)

    with ThreadPoolExecutor(max_workers=min(8, len(chosen)), thread_name_prefix="notify") as pool:
        return list(pool.map(one, chosen))


def _redact(text: str, target: NotifyTarget, env: Mapping[str, str]) -> str:
    for name in target.secret_envs().values():
        value = env.get(name) if name else None
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return " ".join(text.split())


def notify_run(store: Any, settings: NotifySettings | None, run: Any, *, console: Any = None,
               env: Mapping[str, str] | None = None, stdout: TextIO | None = None,
               stderr: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
               ) -> list[DeliveryResult]:
    """Notify every target of the finished ``run``, record each delivery in the store, print one
    warning line per failed one. Never raises: the run's result is settled before this is called."""
    if settings is None or not settings.targets:
        return []
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        summary = summarize(store, run)
    except Exception as exc:  # the store went away: say so once, the run stands
        stderr.write(f"WARNING: notifications not sent: cannot read run {run.run_id} back: {exc}\n")
        return []
    results = deliver_all(settings, summary, env, sleep)
    for result in results:
        for line in result.detail.get("stdout", []):  # GitHub workflow commands
            stdout.write(line + "\n")
    events = [r.event() for r in results]
    events += [{"kind": ISSUE_EVENT, "t": time.time(), "message": f"{i['action']} {i['issue']}",
                "target": r.target, **i} for r in results for i in r.detail.get("issues", [])]
    try:
        from testfleet.store.recorder import StoreRecorder

        StoreRecorder(store).append_events(run.run_id, events)
    except Exception as exc:
        stderr.write(f"WARNING: notification results not stored: {exc}\n")
    for result in results:
        if not result.ok:
            stderr.write(result.warning(run.run_id) + "\n")
    delivered = [r.target for r in results if r.ok]
    if delivered and console is not None and getattr(console, "verbosity", 0) >= 0:
        console.console.print(f"[dim]notified: {', '.join(delivered)}[/dim]")
    return results


def stored_issues(store: Any, target: str | None = None) -> dict[str, str]:
    """fingerprint -> the tracker issue last created or commented for it (from the events)."""
    rows = store.query("SELECT data::VARCHAR FROM events WHERE kind = $1 ORDER BY t", [ISSUE_EVENT])
    import json

    out: dict[str, str] = {}
    for (data,) in rows:
        item = json.loads(data)
        if target is None or item.get("target") == target:
            out[item["fingerprint"]] = item["issue"]
    return out


__all__ = ["DELIVERY_EVENT", "ISSUE_EVENT", "DeliveryResult", "deliver_all", "notify_run", "stored_issues"]
