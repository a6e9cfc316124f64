"""The memory tracker: tracemalloc inside a Python SUT, RSS and smaps sampling outside any other.

A Python SUT started with testfleet's sitecustomize (:mod:`.sut_sitecustomize`, put on its
``PYTHONPATH`` by :func:`sut_env` when the ``memory`` helper is enabled) reports its allocation
sites on SIGUSR2: the helper asks at attach time and again after ``duration`` seconds, so the
artefact names the largest sites and those that grew while it watched. Any other SUT (or a Python
one started without the sitecustomize) is sampled from outside: its RSS every half second, and
at the end its mappings of ``/proc/PID/smaps`` by resident size.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from testfleet.execution.probes.outcome import HelperOutcome
from testfleet.execution.probes.settings import HelperSettings
from testfleet.execution.probes.target import Target

_SAMPLE_EVERY = 0.5
_REPLY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Allocation:
    kind: str  # "top": allocated now; "growth": grew since the previous report
    size: int  # bytes
    count: int  # blocks
    where: str  # file:line


def prepare_sitecustomize(folder: Path) -> Path:
    """Copy testfleet's sitecustomize into ``folder`` (made if missing); the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("sut_sitecustomize.py"), folder / "sitecustomize.py")
    return folder


def sut_env(site_dir: Path, out_dir: Path, top: int, pythonpath: str | None) -> dict[str, str]:
    """What the SUT's environment gets for tracemalloc: the sitecustomize folder first on
    ``PYTHONPATH`` (before ``pythonpath``, the SUT's own), where to write, how much."""
    path = str(site_dir) + (os.pathsep + pythonpath if pythonpath else "")
    return {"PYTHONPATH": path, "TESTFLEET_MEMORY_DIR": str(out_dir), "TESTFLEET_MEMORY_TOP": str(top)}


def parse_tracemalloc(text: str) -> list[Allocation]:
    """The sitecustomize's report: ``kind<TAB>size<TAB>count<TAB>file:line`` lines (``#``
    comments and lines that are not such rows are passed over)."""
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) != 4 or parts[0] not in ("top", "growth"):
            continue
        try:
            out.append(Allocation(parts[0], int(parts[1]), int(parts[2]), parts[3]))
        except ValueError:
            continue
    return out


def track_memory(target: Target, folder: Path, stem: str, settings: HelperSettings, *,
                 memory_dir: Path | None, stop: threading.Event) -> HelperOutcome:
    ready = memory_dir / f"tracemalloc-{target.pid}.ready" if memory_dir is not None else None
    if target.python and ready is not None and ready.is_file():
        return _tracemalloc(target, folder, stem, settings, ready.with_suffix(".tsv"), stop)
    return _sample_rss(target, folder, stem, settings, stop)


def _ask(pid: int, report: Path) -> str | None:
    report.unlink(missing_ok=True)
    try:
        os.kill(pid, signal.SIGUSR2)
    except OSError:
        return None
    deadline = time.monotonic() + _REPLY_TIMEOUT
    while time.monotonic() < deadline:
        if report.is_file():
            return report.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.05)
    return None


def _tracemalloc(target: Target, folder: Path, stem: str, settings: HelperSettings, report: Path,
                 stop: threading.Event) -> HelperOutcome:
    if _ask(target.pid, report) is None:
        return HelperOutcome("memory", "tracemalloc", None, f"pid {target.pid} did not answer SIGUSR2 "
                             f"within {_REPLY_TIMEOUT:.0f}s")
    stop.wait(settings.duration)
    text = _ask(target.pid, report)
    if text is None:
        return HelperOutcome("memory", "tracemalloc", None, f"pid {target.pid} did not answer the second "
                             "SIGUSR2 (it ended?)")
    allocations = parse_tracemalloc(text)
    lines = [f"tracemalloc of pid {target.pid}: largest allocation sites, then growth over "
             f"{settings.duration:g}s"]
    for kind in ("top", "growth"):
        lines.append(f"\n{kind}:")
        lines += [f"  {a.size:>12,} B {a.count:>8} blocks  {a.where}" for a in allocations if a.kind == kind]
    path = folder / f"{stem}.allocations.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return HelperOutcome("memory", "tracemalloc", str(path), f"top allocations of pid {target.pid}")


def _sample_rss(target: Target, folder: Path, stem: str, settings: HelperSettings,
                stop: threading.Event) -> HelperOutcome:
    try:
        proc = psutil.Process(target.pid)
        started = time.monotonic()
        series: list[tuple[float, int]] = []
        while True:
            series.append((time.monotonic() - started, proc.memory_info().rss))
            if time.monotonic() - started >= settings.duration or stop.wait(_SAMPLE_EVERY):
                break
    except psutil.Error as exc:
        return HelperOutcome("memory", "smaps", None, f"pid {target.pid} cannot be read: {exc}")
    lines = [f"RSS of pid {target.pid} ({target.name}) every {_SAMPLE_EVERY}s, then its largest mappings"]
    lines += [f"  {t:6.2f}s {rss / 2**20:10.1f} MiB" for t, rss in series]
    growth = series[-1][1] - series[0][1]
    lines.append(f"  growth {growth / 2**20:+.1f} MiB over {series[-1][0]:.1f}s")
    mappings = smaps_by_mapping(target.pid)
    lines.append("\nlargest mappings by Rss:")
    lines += [f"  {kib:>10,} KiB  {name}" for name, kib in mappings[: settings.top]]
    path = folder / f"{stem}.memory.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return HelperOutcome("memory", "smaps", str(path), f"RSS {growth / 2**20:+.1f} MiB over "
                         f"{series[-1][0]:.1f}s, and mappings of pid {target.pid}")


def smaps_by_mapping(pid: int) -> list[tuple[str, int]]:
    """Resident KiB per mapping name (a file, ``[heap]``, ``[anon]``), largest first."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return summarise_smaps(text)


def summarise_smaps(text: str) -> list[tuple[str, int]]:
    sizes: dict[str, int] = {}
    name = "[anon]"
    for line in text.splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            name = head[5].strip() if len(head) == 6 and head[5].strip() else "[anon]"
        elif line.startswith("Rss:") and len(head) >= 2 and head[1].isdigit():
            sizes[name] = sizes.get(name, 0) + int(head[1])
    return sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
