"""Spec verdicts as JSON, Markdown and JUnit XML (one testcase per spec) for CI gates."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from testfleet.atomic import atomic_write_text
from testfleet.specs.check import HOLDS, UNTESTED, VIOLATED, Verdict


def summary(verdicts: Sequence[Verdict]) -> str:
    counts = Counter(v.status for v in verdicts)
    return ", ".join(f"{counts[s]} {s}" for s in (VIOLATED, HOLDS, UNTESTED) if counts[s]) \
        or "no specs"


def to_json(verdicts: Sequence[Verdict], run_id: str | None) -> dict:
    return {"run": run_id, "summary": summary(verdicts),
            "counts": dict(Counter(v.status for v in verdicts)),
            "specs": [v.to_dict() for v in verdicts]}


def write_json(path: str | Path, verdicts: Sequence[Verdict], run_id: str | None) -> Path:
    return atomic_write_text(path, json.dumps(to_json(verdicts, run_id), indent=2, default=str)
                             + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(verdicts: Sequence[Verdict], run_id: str | None) -> str:
    lines = [f"## Behaviour specs — run {run_id or '?'}", "", f"**{summary(verdicts)}**", "",
             "| spec | verdict | matching | violations | then |", "| --- | --- | --- | --- | --- |"]
    icon = {HOLDS: "✅ holds", VIOLATED: "❌ violated", UNTESTED: "⚪ untested"}
    for v in verdicts:
        lines.append(f"| `{v.spec.ref}` | {icon[v.status]} | {v.matching} | {v.violations} | "
                     f"{_cell(v.spec.then.describe())} |")
    for v in verdicts:
        if v.examples:
            lines += ["", f"### `{v.spec.ref}` violated", ""]
            lines += [f"- `{e.variant_id}` {_cell(e.nodeid)} — {e.why}"
                      + (f": {_cell(e.message)}" if e.message else "") for e in v.examples]
    return "\n".join(lines) + "\n"


def write_markdown(path: str | Path, verdicts: Sequence[Verdict], run_id: str | None) -> Path:
    return atomic_write_text(path, to_markdown(verdicts, run_id))


def to_junit(verdicts: Sequence[Verdict], run_id: str | None, source: str) -> str:
    counts = Counter(v.status for v in verdicts)
    suite = ET.Element("testsuite", name="testfleet specs", tests=str(len(verdicts)),
                       failures=str(counts[VIOLATED]), errors="0",
                       skipped=str(counts[UNTESTED]))
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run",
                  value=run_id or "")
    classname = "specs." + Path(source).stem.replace(".", "_")
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=classname, name=v.spec.ref,
                             time="0")
        if v.status == VIOLATED:
            body = "\n".join(f"{e.variant_id} {e.nodeid}: {e.why}" + (f" ({e.message})"
                                                                     if e.message else "")
                             for e in v.examples)
            failure = ET.SubElement(case, "failure",
                                    message=f"{v.violations} of {v.matching} matching "
                                            f"executions violate: {v.spec.then.describe()}")
            failure.text = body
        elif v.status == UNTESTED:
            ET.SubElement(case, "skipped", message=v.note or "no matching executions")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{v.matching} matching executions hold: {v.spec.then.describe()}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(path: str | Path, verdicts: Sequence[Verdict], run_id: str | None,
                source: str) -> Path:
    return atomic_write_text(path, to_junit(verdicts, run_id, source))
