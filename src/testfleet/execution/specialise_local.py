"""What a grant and a release do to the processes on this machine.

The unit is a worker's process tree (the worker, its SUT instance and their children): a SUT
restarted under another configuration is a new child of its worker and inherits the worker's
affinity and niceness, so setting the whole tree once holds until the release.

* **affinity** (``sched_setaffinity``, no privileges needed): the granted instances keep every
  CPU; the others lose the first half of them, which the granted ones then have to themselves.
  With a single CPU there is nothing to give: skipped, with that reason.
* **nice**: an unprivileged process may lower priority, never raise it. A grant therefore lowers
  the *others* by ``nice``; a release tries to put them back and, where that needs privileges
  (it does without CAP_SYS_NICE), lowers the released instance to the same niceness instead, so
  that all instances are equal again, only all lower.
* **cgroup v2**: only where this process's cgroup is on a unified hierarchy that offers the
  ``cpu`` controller and is writable by us; then each instance gets a child group whose
  ``cpu.weight`` is 400 when granted, 100 otherwise. Elsewhere (cgroup v1, a read-only or
  controller-less hierarchy) it is skipped, and :func:`cgroup_v2` says why.

Every method returns the lines that say what was done (or skipped, and why): the coordinator
publishes them as the change's reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["LocalActuator", "cgroup_v2"]

GRANTED_WEIGHT = 400
DEFAULT_WEIGHT = 100


def _usable_cpus() -> list[int]:
    """The CPUs this process may run on; [] where the platform has no affinity (macOS)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cgroup_v2(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
              ) -> tuple[Path | None, str]:
    """This process's cgroup v2 directory when we can give CPU weights there, else None and why."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read {proc_cgroup}: {exc.strerror}"
    unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    if not unified:
        return None, "no cgroup v2 (unified) hierarchy for this process"
    mount = root if (root / "cgroup.controllers").exists() else root / "unified"
    if not (mount / "cgroup.controllers").exists():
        return None, f"no cgroup v2 hierarchy mounted at {root}"
    if len(lines) > 1:
        why = f"cgroup v1 controllers are mounted ({root}); the v2 hierarchy at {mount} is hybrid"
    else:
        why = ""
    here = mount / unified[0].lstrip("/")
    controllers = (mount / "cgroup.controllers").read_text().split()
    if "cpu" not in controllers:
        return None, (why + "; " if why else "") + f"the cgroup v2 hierarchy at {mount} offers no cpu controller"
    if not os.access(here, os.W_OK) or not os.access(here / "cgroup.subtree_control", os.W_OK):
        return None, (why + "; " if why else "") + f"{here} is not writable by this user"
    return here, ""


@dataclass
class LocalActuator:
    """Applies grants and releases to worker process trees, and remembers how to undo them."""

    nice: int = 5
    affinity: bool = True
    cgroup: bool = True
    cpus: list[int] = field(default_factory=lambda: _usable_cpus())
    _affinity: dict[int, list[int]] = field(default_factory=dict)  # pid -> its affinity before us
    _niced: dict[int, int] = field(default_factory=dict)  # pid -> its niceness before us
    _groups: dict[str, Path] = field(default_factory=dict)
    _cgroup_checked: tuple[Path | None, str] | None = None

    def grant(self, granted: dict[str, int], others: dict[str, int]) -> list[str]:
        """``granted`` and ``others``: instance -> its worker's pid. Returns what was done."""
        done: list[str] = []
        if self.affinity:
            done.append(self._share_cpus(granted, others))
        if self.nice:
            lowered = [name for name, pid in others.items() if self._lower(pid, self.nice)]
            done.append(f"nice: {', '.join(lowered)} lowered by {self.nice} (raising the granted instance "
                        "needs privileges)" if lowered else "nice: no other instance to lower")
        if self.cgroup:
            done.append(self._weights(granted, others))
        return done

    def release(self, released: dict[str, int], granted: dict[str, int], others: dict[str, int]) -> list[str]:
        """Give back what ``released`` had; ``granted``: those still granted; ``others``: the rest."""
        done: list[str] = []
        if self.affinity:
            if granted:
                done.append(self._share_cpus(granted, {**others, **released}))
            else:
                restored = sum(self._restore_affinity(pid) for pid in {**others, **released}.values())
                done.append(f"affinity: {restored} processes back on their own CPUs")
        if self.nice and not granted:
            done.append(self._unlower(released, others))
        if self.cgroup:
            done.append(self._weights(granted, {**others, **released}))
        return done

    # -- affinity -----------------------------------------------------------------------------
    def _share_cpus(self, granted: dict[str, int], others: dict[str, int]) -> str:
        if not hasattr(os, "sched_setaffinity"):
            return "affinity: skipped, this platform has no sched_setaffinity"
        if len(self.cpus) < 2:
            return f"affinity: skipped, {len(self.cpus)} CPU available, nothing to set apart"
        reserved = self.cpus[:len(self.cpus) // 2]
        rest = self.cpus[len(self.cpus) // 2:]
        for pid in granted.values():
            self._set_affinity(pid, self.cpus)
        for pid in others.values():
            self._set_affinity(pid, rest)
        return (f"affinity: CPU {','.join(map(str, reserved))} kept for {', '.join(sorted(granted))}; "
                f"{', '.join(sorted(others)) or 'no other instance'} on CPU {','.join(map(str, rest))}")

    def _set_affinity(self, pid: int, cpus: list[int]) -> None:
        for proc in _tree(pid):
            try:
                self._affinity.setdefault(proc.pid, sorted(os.sched_getaffinity(proc.pid)))
                os.sched_setaffinity(proc.pid, cpus)
            except (OSError, psutil.Error):
                pass  # it ended meanwhile

    def _restore_affinity(self, pid: int) -> int:
        restored = 0
        for proc in _tree(pid):
            before = self._affinity.pop(proc.pid, None)
            if before is None:
                continue
            try:
                os.sched_setaffinity(proc.pid, before)
                restored += 1
            except OSError:
                pass
        return restored

    # -- nice ---------------------------------------------------------------------------------
    def _lower(self, pid: int, by: int) -> bool:
        changed = False
        for proc in _tree(pid):
            try:
                now = os.getpriority(os.PRIO_PROCESS, proc.pid)
                if proc.pid in self._niced:
                    continue  # lowered already
                self._niced[proc.pid] = now
                os.setpriority(os.PRIO_PROCESS, proc.pid, min(19, now + by))
                changed = True
            except OSError:
                pass
        return changed

    def _unlower(self, released: dict[str, int], others: dict[str, int]) -> str:
        back, equalised = [], []
        for name, pid in others.items():
            for proc in _tree(pid):
                before = self._niced.get(proc.pid)
                if before is None:
                    continue
                try:
                    os.setpriority(os.PRIO_PROCESS, proc.pid, before)
                    self._niced.pop(proc.pid)
                    back.append(name)
                except OSError:  # lowering niceness needs privileges: equalise instead
                    equalised.append(name)
        if equalised:
            for pid in released.values():
                self._lower(pid, self.nice)
            return (f"nice: {', '.join(sorted(set(equalised)))} cannot be raised back without privileges; "
                    f"{', '.join(sorted(released))} lowered by {self.nice} too, so all are equal again")
        return f"nice: {', '.join(sorted(set(back)))} back to their niceness" if back else "nice: nothing to undo"

    # -- cgroup v2 ----------------------------------------------------------------------------
    def _weights(self, granted: dict[str, int], others: dict[str, int]) -> str:
        if self._cgroup_checked is None:
            self._cgroup_checked = cgroup_v2()
        here, why = self._cgroup_checked
        if here is None:
            return f"cgroup: skipped, {why}"
        try:
            (here / "cgroup.subtree_control").write_text("+cpu")
            for name, pid in {**granted, **others}.items():
                group = self._groups.setdefault(name, here / f"testfleet-{os.getpid()}-{name}")
                group.mkdir(exist_ok=True)
                (group / "cpu.weight").write_text(str(GRANTED_WEIGHT if name in granted else DEFAULT_WEIGHT))
                for proc in _tree(pid):
                    (group / "cgroup.procs").write_text(str(proc.pid))
        except OSError as exc:
            return f"cgroup: skipped, writing under {here} failed: {exc.strerror or exc}"
        return (f"cgroup: cpu.weight {GRANTED_WEIGHT} for {', '.join(sorted(granted)) or 'none'}, "
                f"{DEFAULT_WEIGHT} for the others")
