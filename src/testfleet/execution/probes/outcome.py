"""What one helper left behind: an artefact's path, or the reason it has none; and the watch
that keeps an attached helper process inside its time and its share of the CPU."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import psutil

_POLL = 0.2
_GRACE = 5.0  # seconds a stopped helper has to write its artefact


@dataclass(frozen=True)
class HelperOutcome:
    helper: str  # profile | memory | threads
    tool: str  # py-spy | perf | tracemalloc | smaps | proc
    path: str | None  # the artefact (None: the helper left none)
    reason: str  # what the artefact holds, or why there is none
    cpu_s: float | None = None  # CPU seconds the helper's own process used while attached
    attached_s: float | None = None  # seconds it was attached


@dataclass(frozen=True)
class Supervised:
    note: str  # why it stopped early ("" when it ran its course)
    cpu_s: float  # CPU seconds it used, as last read while it ran
    attached_s: float


def supervise(proc: subprocess.Popen[bytes], *, duration: float, share: float, stop: threading.Event) -> Supervised:
    """Let ``proc`` (a helper attached to the SUT) run for ``duration`` seconds, then SIGINT it
    (py-spy and perf write their output on SIGINT); stop it sooner when the run ends (``stop``)
    or when its CPU over the last second or more exceeds ``share`` of one CPU."""
    started = time.monotonic()
    note = ""
    used_s = 0.0
    try:
        watched = psutil.Process(proc.pid)
    except psutil.Error:
        watched = None
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if elapsed >= duration:
            break
        if stop.wait(_POLL):
            note = f"stopped after {elapsed:.1f}s: the run ended"
            break
        if watched is not None:
            try:
                times = watched.cpu_times()
            except psutil.Error:
                continue
            used_s = times.user + times.system
            used = used_s / max(elapsed, 1e-9)
            if elapsed >= 1.0 and used > share:
                note = f"stopped after {elapsed:.1f}s: it used {used:.1%} of a CPU, over its {share:.1%} share"
                break
    attached = time.monotonic() - started
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            note = (note + "; " if note else "") + "killed: it did not stop on SIGINT"
    return Supervised(note, used_s, attached)


def tail(data: bytes, lines: int = 3) -> str:
    """The last lines of a helper's output, for the reason it left nothing."""
    text = data.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(text[-lines:]) if text else "no output"
