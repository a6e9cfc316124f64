"""Telemetry sources in the sampler: probes built before the sampler child is forked (the child
loads nothing after the fork) and read at every sample, beside the probes of the processes the
sampler watches (the worker's own and its SUT's). The machine-wide source ``system`` is one of
them, registered through the same hook as a plugin's (:mod:`testfleet.telemetry.sources`)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["plugin_probes", "read_plugin_probes"]


def plugin_probes() -> dict[str, Any]:
    """source name -> (probe, raw), for the registered telemetry sources (a source that cannot be
    built is left out, with one warning: telemetry never stops a worker)."""
    from testfleet.plugins import registry

    probes: dict[str, Any] = {}
    try:
        sources = registry().telemetry_sources()
    except Exception as exc:  # noqa: BLE001 - a broken plugin already stopped the coordinator
        sys.stderr.write(f"WARNING: no plugin telemetry: {exc}\n")
        return probes
    for name, spec in sources.items():
        try:
            probes[name] = (spec.factory(), spec.raw)
        except Exception as exc:  # noqa: BLE001
            sys.stderr.write(f"WARNING: telemetry source {name!r} left out: {type(exc).__name__}: {exc}\n")
    return probes


def read_plugin_probes(probes: dict[str, Any], values: dict[str, float]) -> None:
    """Each probe's reading, as ``plugin.<source>.<metric>`` (a raw source's: as it names them,
    under ``<source>.``); a probe that fails is skipped for this sample."""
    for source, (probe, raw) in probes.items():
        try:
            for metric, value in probe.read().items():
                if not raw:
                    values[f"plugin.{source}.{metric}"] = float(value)
                elif metric.startswith(f"{source}."):
                    values[metric] = float(value)
        except Exception:  # noqa: BLE001, S112 - the child has no stderr; the next sample tries again
            continue
