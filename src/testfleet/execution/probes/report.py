"""The helpers' artefacts of a run, as the run summary and ``testfleet show RUN`` list them."""

from __future__ import annotations

from typing import Any


def artefact_lines(store: Any, run_id: str) -> list[str]:
    """One line per helper event of the run (attachments, artefacts with their paths, skips),
    from the store's ``helper`` events; [] when no helper was attached or skipped."""
    from testfleet.store.telemetry import TelemetryStore

    events = TelemetryStore(store).events(run_id, kinds=("helper",))
    if not events:
        return []
    lines = ["helpers on anomaly:"]
    for event in events:
        action = str(event.get("action", ""))
        if action == "artefact":
            lines.append(f"  {event.get('helper', '')} ({event.get('tool', '')}): {event.get('path', '')}")
        elif action == "attach":
            lines.append(f"  attached on {event.get('worker') or '?'}: {event.get('message', '')}")
        else:
            lines.append(f"  skipped: {event.get('message', '')}")
    return lines
