"""The sampling profiler: py-spy for a Python SUT, ``perf`` for a native one; a flame graph SVG.

py-spy attaches to the running process (``record --pid``) with ``--nonblocking``: it reads the
SUT's memory without pausing it, which is what keeps the overhead to the CPU py-spy itself uses
(about 0.1-0.2 ms per sample). Attaching needs ptrace rights over the SUT: root, CAP_SYS_PTRACE,
or (Yama ``ptrace_scope`` 0) the same user; under Yama scope 1 only an ancestor may attach and
py-spy is not one, so the helper is skipped with py-spy's own message.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from testfleet.execution.probes.flame import fold_perf_script, folded_lines, render_svg
from testfleet.execution.probes.outcome import HelperOutcome, Supervised, supervise, tail
from testfleet.execution.probes.settings import HelperSettings, cpu_share, pyspy_path, sampling_rate
from testfleet.execution.probes.target import Target


def profile(target: Target, folder: Path, stem: str, settings: HelperSettings, *, attached: int,
            stop: threading.Event) -> HelperOutcome:
    """Sample ``target`` for ``settings.duration`` seconds into ``<folder>/<stem>.svg``."""
    rate = sampling_rate(settings, attached)
    share = cpu_share(settings, attached)
    if target.python:
        return _pyspy(target, folder / f"{stem}.svg", settings.duration, rate, share, stop)
    return _perf(target, folder, stem, settings.duration, rate, share, stop)


def _pyspy(target: Target, svg: Path, duration: float, rate: int, share: float,
           stop: threading.Event) -> HelperOutcome:
    exe = pyspy_path()
    if exe is None:
        return HelperOutcome("profile", "py-spy", None, "py-spy is not installed "
                             "(pip install 'testfleet[profile]')")
    argv = [exe, "record", "--pid", str(target.pid), "--rate", str(rate), "--nonblocking",
            "--duration", str(max(1, int(duration + 1))), "--format", "flamegraph", "--output", str(svg)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watch = supervise(proc, duration=duration, share=share, stop=stop)
    output = proc.stdout.read() if proc.stdout is not None else b""
    if not svg.is_file():
        return HelperOutcome("profile", "py-spy", None, f"py-spy wrote no flame graph (exit {proc.returncode}): "
                             f"{tail(output)}")
    what = f"flame graph of pid {target.pid}, {rate} samples/s, {_cost(watch)}"
    return HelperOutcome("profile", "py-spy", str(svg), f"{what}; {watch.note}" if watch.note else what,
                         cpu_s=watch.cpu_s, attached_s=watch.attached_s)


def _perf(target: Target, folder: Path, stem: str, duration: float, rate: int, share: float,
          stop: threading.Event) -> HelperOutcome:
    exe = shutil.which("perf")
    if exe is None:
        return HelperOutcome("profile", "perf", None, f"{target.name} is not a Python process and perf is "
                             "not installed")
    data = folder / f"{stem}.perf.data"
    pids = ",".join(str(pid) for pid in target.family or (target.pid,))
    proc = subprocess.Popen([exe, "record", "-F", str(rate), "-g", "-p", pids, "-o", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watch = supervise(proc, duration=duration, share=share, stop=stop)
    output = proc.stdout.read() if proc.stdout is not None else b""
    if not data.is_file():
        return HelperOutcome("profile", "perf", None, f"perf recorded nothing (exit {proc.returncode}): "
                             f"{tail(output)}")
    script = subprocess.run([exe, "script", "-i", str(data)], capture_output=True, timeout=60, check=False)
    data.unlink(missing_ok=True)
    stacks = fold_perf_script(script.stdout.decode("utf-8", "replace"))
    if not stacks:
        return HelperOutcome("profile", "perf", None, f"perf took no samples of pid {pids} (a kernel or sandbox "
                             f"that does not sample it?): {tail(script.stderr)}")
    (folder / f"{stem}.folded").write_text("\n".join(folded_lines(stacks)) + "\n", encoding="utf-8")
    svg = folder / f"{stem}.svg"
    svg.write_text(render_svg(stacks, f"perf: pid {target.pid} ({target.name})"), encoding="utf-8")
    what = f"flame graph of pid {target.pid} (perf), {rate} samples/s, {_cost(watch)}"
    return HelperOutcome("profile", "perf", str(svg), f"{what}; {watch.note}" if watch.note else what,
                         cpu_s=watch.cpu_s, attached_s=watch.attached_s)


def _cost(watch: Supervised) -> str:
    return f"{watch.cpu_s:.2f} CPU s over {watch.attached_s:.1f} s attached"
