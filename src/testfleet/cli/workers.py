"""``testfleet workers``: the machines workers would run on, and the hardware each offers."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from testfleet.errors import TestfleetError
from testfleet.execution.capabilities import Capabilities, detect, format_memory
from testfleet.settings import load_settings
from testfleet.reporting.consoles import make_console

BAD_INPUT = 2


def show_workers(backend: str | None, ray_address: str | None) -> int:
    try:
        settings, _ = load_settings([], {"backend": backend, "ray_address": ray_address}, cwd=Path.cwd())
        if settings.backend == "ray":
            machines = _ray_machines(settings.ray_address)
        else:
            if settings.backend != "local":  # a plugin's backend: where its workers run is its own
                sys.stderr.write(f"note: the backend {settings.backend!r} (a plugin) does not describe its "
                                 "machines; shown: this machine\n")
            machines = [detect(resources=settings.resources, labels=settings.labels)]
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BAD_INPUT
    table = Table("host", "cpu", "cpus", "memory", "gpus", "os", "python", "resources", "labels",
                  box=None, header_style="bold")
    for caps in machines:
        gpus = ", ".join(g.get("name") or "GPU" for g in caps.gpus) or "-"
        table.add_row(escape(caps.hostname), escape(caps.cpu_model or "-"), str(caps.cpus),
                      format_memory(caps.memory), escape(gpus), escape(caps.os), caps.python,
                      escape(_pairs(caps.resources)), escape(_pairs(caps.labels)))
    make_console().print(table)
    return 0


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(values.items())) or "-"


def _ray_machines(address: str | None) -> list[Capabilities]:
    from testfleet.execution.backends.builtin import keep_local_ray_on_loopback

    keep_local_ray_on_loopback(address)
    try:
        import ray

        from testfleet.execution.backends.ray import ray_workers_table
    except ImportError:
        raise TestfleetError("the Ray backend needs Ray: pip install 'testfleet[ray]'", place="--backend ray") from None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    kwargs.update({"address": address} if address else {"_node_ip_address": "127.0.0.1"})
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError) as exc:
        raise TestfleetError(f"cannot reach the Ray cluster: {exc}", place="--ray-address") from None
    try:
        return [Capabilities.from_dict(row) for row in ray_workers_table()]
    finally:
        ray.shutdown()
