"""What a worker machine offers, what a test requires, and whether the two fit.

* :func:`parse_memory` turns ``"8GB"``-style sizes into bytes. Units are case-insensitive:
  ``KB/MB/GB/TB/PB`` are decimal (1000**n); ``K/M/G/T/P``, ``Ki/Mi/Gi/Ti/Pi`` and
  ``KiB/MiB/GiB/TiB/PiB`` are binary (1024**n), as in Kubernetes where a bare ``G`` is ``Gi``.
  ``B`` or no unit means bytes. Fractions round to the nearest byte.
* :class:`Requirements` is what a test asks for (``cpus``, ``gpus``, ``memory``, custom
  ``resources``, ``labels``); :class:`Capabilities` is what one worker or node offers,
  :func:`detect` measures this machine.
* :func:`unmet` lists what a machine lacks; :func:`skip_reason` says why no machine in a list fits.
"""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from testfleet.errors import UsageError

_DECIMAL = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15}
_BINARY = {p: 1024 ** (i + 1) for i, p in enumerate("kmgtp")}
#: every accepted unit (lower case) -> bytes per unit
MEMORY_UNITS: dict[str, int] = {"": 1, "b": 1, **_DECIMAL}
for _p, _f in _BINARY.items():
    MEMORY_UNITS.update({_p: _f, _p + "i": _f, _p + "ib": _f})

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.ASCII | re.IGNORECASE)
_EXPECTED_SIZE = "a non-negative number of bytes, or a number with a unit such as 512MB, 8GB, 8GiB, 1.5G, 256Mi"


def parse_memory(value: str | float, *, where: str | None = None) -> int:
    """Bytes in ``value``: an int/float count of bytes or a string such as ``"8GB"`` or ``"1.5Gi"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, float):
        if math.isfinite(value) and value >= 0:
            return round(value)
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match and match.group(2).lower() in MEMORY_UNITS:
            return round(Fraction(match.group(1)) * MEMORY_UNITS[match.group(2).lower()])
    raise UsageError(f"invalid memory size {value!r}", place=where, expected=_EXPECTED_SIZE)


def format_memory(nbytes: int) -> str:
    """Short human size: ``8GB``, ``8GiB`` when an exact binary multiple, else ``23.4GB``."""
    for unit, factor, decimal in (("TiB", 2**40, 10**12), ("GiB", 2**30, 10**9), ("MiB", 2**20, 10**6)):
        if nbytes >= factor and nbytes % factor == 0 and nbytes % decimal != 0:
            return f"{nbytes // factor}{unit}"
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f}".removesuffix(".0") + unit
    return f"{nbytes}B"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _number(key: str, value: Any, where: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"requirement {key!r} is {value!r}", place=where, expected="a non-negative number")
    return float(value)


def _resources(value: Any, where: str | None, what: str = "resources") -> dict[str, float]:
    if not isinstance(value, dict):
        raise UsageError(f"{what!r} is {value!r}", place=where, expected="a table of name = number")
    out = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"{what} name {name!r}", place=where, expected="a non-empty string")
        out[name] = _number(f"{what}.{name}", amount, where)
    return out


def _labels(value: Any, where: str | None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(f"'labels' is {value!r}", place=where, expected="a table of name = string")
    for name, text in value.items():
        if not isinstance(name, str) or not name or not isinstance(text, str):
            raise UsageError(f"label {name!r} = {text!r}", place=where, expected="a non-empty name and a string value")
    return dict(value)


@dataclass(frozen=True)
class Requirements:
    """What one test needs from the machine that runs it. Zero means "nothing asked"."""

    cpus: float = 0
    gpus: float = 0
    memory: int = 0
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    FIELDS = ("cpus", "gpus", "memory", "resources", "labels")

    def __post_init__(self) -> None:  # own sorted copies; zero-amount resources ask for nothing
        object.__setattr__(self, "resources", {k: float(v) for k, v in sorted(self.resources.items()) if v})
        object.__setattr__(self, "labels", dict(sorted(self.labels.items())))

    def __hash__(self) -> int:
        return hash(self.key())

    @classmethod
    def from_marker_kwargs(cls, kwargs: dict[str, Any], *, where: str) -> Requirements:
        """Validated requirements from ``@pytest.mark.requires(...)`` keywords or a settings table."""
        unknown = sorted(set(kwargs) - set(cls.FIELDS), key=str)
        if unknown:
            raise UsageError(f"unknown requirement {unknown[0]!r}", place=where, expected=", ".join(cls.FIELDS))
        memory = kwargs.get("memory", 0)
        if isinstance(memory, bool) or not isinstance(memory, (str, int, float)):
            raise UsageError(f"requirement 'memory' is {memory!r}", place=where, expected=_EXPECTED_SIZE)
        try:
            nbytes = parse_memory(memory)
        except UsageError as exc:
            raise UsageError(f"requirement 'memory' is {memory!r}", place=where, expected=_EXPECTED_SIZE) from exc
        return cls(cpus=_number("cpus", kwargs.get("cpus", 0), where),
                   gpus=_number("gpus", kwargs.get("gpus", 0), where), memory=nbytes,
                   resources=_resources(kwargs.get("resources", {}), where),
                   labels=_labels(kwargs.get("labels", {}), where))

    def merge(self, other: Requirements, *, where: str | None = None) -> Requirements:
        """Both sets at once: the larger of each amount, the union of labels (a clash is an error)."""
        resources = dict(self.resources)
        for name, amount in other.resources.items():
            resources[name] = max(amount, resources.get(name, 0.0))
        labels = dict(self.labels)
        for name, text in other.labels.items():
            if labels.get(name, text) != text:
                raise UsageError(f"conflicting label {name!r}: {labels[name]!r} and {text!r}", place=where,
                                 expected="one value per label")
            labels[name] = text
        return Requirements(max(self.cpus, other.cpus), max(self.gpus, other.gpus),
                            max(self.memory, other.memory), resources, labels)

    @property
    def is_empty(self) -> bool:
        return not (self.cpus or self.gpus or self.memory or self.resources or self.labels)

    def _parts(self, memory: str, res: str, label: str, sep: str) -> list[str]:
        parts = [f"{k}={_num(v)}" for k, v in (("cpus", self.cpus), ("gpus", self.gpus)) if v]
        parts += [f"memory={memory}"] if self.memory else []
        parts += [f"{res}{k}={_num(v)}" for k, v in sorted(self.resources.items())]
        return parts + [f"{label}{k}{sep}{v}" for k, v in sorted(self.labels.items())]

    def key(self) -> str:
        """Stable grouping key, e.g. ``cpus=2,gpus=1,memory=8000000000,res:special=1,label:accelerator=h100``."""
        return ",".join(self._parts(str(self.memory), "res:", "label:", "="))

    def describe(self) -> str:
        """Human text, e.g. ``gpus=1, memory=8GB, resource special=1, label accelerator=h100``."""
        return ", ".join(self._parts(format_memory(self.memory), "resource ", "label ", "=")) or "nothing"

    def ray_options(self) -> dict[str, Any]:
        """``num_cpus``/``num_gpus``/``memory``/``resources`` for Ray's ``.options()`` (labels not included)."""
        opts: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus, "memory": self.memory,
                                "resources": dict(self.resources)}
        return {k: v for k, v in opts.items() if v}


@dataclass
class Capabilities:
    """What one worker machine or Ray node offers."""

    hostname: str = ""
    os: str = ""
    python: str = ""
    cpu_model: str = ""
    cpus: int = 0
    memory: int = 0
    gpus: list[dict[str, Any]] = field(default_factory=list)  # [{"name": str, "memory": bytes}]
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "os": self.os, "python": self.python, "cpu_model": self.cpu_model,
                "cpus": self.cpus, "memory": self.memory, "gpus": [dict(g) for g in self.gpus],
                "resources": dict(self.resources), "labels": dict(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capabilities:
        return cls(hostname=str(data.get("hostname", "")), os=str(data.get("os", "")),
                   python=str(data.get("python", "")), cpu_model=str(data.get("cpu_model", "")),
                   cpus=int(data.get("cpus", 0)), memory=int(data.get("memory", 0)),
                   gpus=[{"name": str(g.get("name", "")), "memory": int(g.get("memory", 0))}
                         for g in data.get("gpus", [])],
                   resources={str(k): float(v) for k, v in dict(data.get("resources", {})).items()},
                   labels={str(k): str(v) for k, v in dict(data.get("labels", {})).items()})

    @classmethod
    def from_ray_node(cls, node: dict[str, Any]) -> Capabilities:
        """A node as ``ray.nodes()`` lists it: CPU/GPU/memory and custom resources (GPU names unknown)."""
        res = dict(node.get("Resources") or {})
        custom = {k: float(v) for k, v in res.items() if k not in _RAY_BUILTIN and not k.startswith(_RAY_PREFIXES)}
        return cls(hostname=str(node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or ""),
                   cpus=int(res.get("CPU", 0)), memory=int(res.get("memory", 0)),
                   gpus=[{"name": "", "memory": 0} for _ in range(int(res.get("GPU", 0)))],
                   resources=custom, labels={str(k): str(v) for k, v in dict(node.get("Labels") or {}).items()})


_RAY_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}
_RAY_PREFIXES = ("node:", "accelerator_type:")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _gpus() -> list[dict[str, Any]]:
    """GPUs via ``nvidia-smi`` (5 s bound, any failure: none); without it, via torch if installed."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=5, check=False)
            if proc.returncode != 0:
                return []
            gpus = []
            for line in proc.stdout.splitlines():
                if line.strip():
                    name, mib = line.rsplit(",", 1)
                    gpus.append({"name": name.strip(), "memory": int(float(mib.strip()) * 2**20)})
            return gpus
        except (OSError, subprocess.SubprocessError, ValueError):
            return []
    try:
        if importlib.util.find_spec("torch") is None:
            return []
        import torch  # only when installed and nvidia-smi is absent

        if not torch.cuda.is_available():
            return []
        props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        return [{"name": str(p.name), "memory": int(p.total_memory)} for p in props]
    except Exception:  # noqa: BLE001 - a broken torch install must not stop a test run
        return []


def detect(resources: dict[str, Any] | None = None, labels: dict[str, Any] | None = None, *,
           where: str = "settings") -> Capabilities:
    """This machine's capabilities, plus the custom ``resources``/``labels`` the user's settings declare."""
    return Capabilities(hostname=socket.gethostname() or platform.node(), os=platform.platform(),
                        python=platform.python_version(), cpu_model=_cpu_model(), cpus=_cpus(),
                        memory=_memory(), gpus=_gpus(), resources=_resources(resources or {}, where),
                        labels=_labels(labels or {}, where))


def unmet(requirements: Requirements, caps: Capabilities) -> list[str]:
    """Each requirement ``caps`` cannot meet, as a short reason; empty when the machine fits."""
    reasons = []
    if requirements.cpus > caps.cpus:
        reasons.append(f"cpus={_num(requirements.cpus)} (this machine has {caps.cpus})")
    if requirements.gpus > len(caps.gpus):
        reasons.append(f"gpus={_num(requirements.gpus)} (this machine has {len(caps.gpus)})")
    if requirements.memory > caps.memory:
        reasons.append(f"memory={format_memory(requirements.memory)} (this machine has {format_memory(caps.memory)})")
    for name, amount in requirements.resources.items():
        if name not in caps.resources:
            reasons.append(f"resource {name!r}={_num(amount)} (not offered)")
        elif amount > caps.resources[name]:
            reasons.append(f"resource {name!r}={_num(amount)} (this machine has {_num(caps.resources[name])})")
    for name, text in requirements.labels.items():
        if caps.labels.get(name) != text:
            reasons.append(f"label {name}={text} (this machine: {caps.labels.get(name, 'none')})")
    return reasons


def skip_reason(requirements: Requirements, caps_list: list[Capabilities]) -> str | None:
    """None when some machine in ``caps_list`` fits (or the list is empty: nothing known to rule it out)."""
    if requirements.is_empty or not caps_list:
        return None
    closest = min((unmet(requirements, caps) for caps in caps_list), key=len)
    if not closest:
        return None
    return f"requires {requirements.describe()}: no worker offers it ({'; '.join(closest)})"
