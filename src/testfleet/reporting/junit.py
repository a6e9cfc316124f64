"""JUnit XML report, shaped like pytest's ``--junitxml`` (xunit2) plus Maven Surefire's reruns.

One ``<testcase>`` per final result (and one per collection error, as pytest writes them). Earlier
failed attempts of a rerun test become ``<flakyFailure>``/``<flakyError>`` children when the final
attempt passed and ``<rerunFailure>``/``<rerunError>`` when it failed, the way Surefire records
``-Dsurefire.rerunFailingTestsCount`` runs, so Jenkins, GitLab and GitHub annotators read them.
"""

from __future__ import annotations

import ast
import os
import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.model import Outcome, Result, Run
from testfleet.reporting.summary import atomic_write_text, final_results
from testfleet.reporting.variant_names import variant_name

# XML 1.0 Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF];
# everything else (control characters, lone surrogates, U+FFFE/U+FFFF) cannot be written at all.
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_FAILURE_OUTCOMES = {Outcome.failed, Outcome.timeout, Outcome.crashed}
_SKIP_OUTCOMES = {Outcome.skipped, Outcome.xfailed}


def xml_safe(value: object) -> str:
    """``str(value)`` without the characters XML 1.0 cannot carry (``None`` becomes ``""``)."""
    return "" if value is None else _ILLEGAL_XML.sub("", str(value))


def mangle_nodeid(nodeid: str) -> tuple[str, str]:
    """(classname, name) for a nodeid, as pytest's junitxml derives them.

    ``tests/test_a.py::TestX::test_y[1]`` gives ``("tests.test_a.TestX", "test_y[1]")``; the
    parameter part is kept whole even when it holds ``::`` or ``/``.
    """
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _element(tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    node = ET.Element(tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text:
        node.text = xml_safe(text)
    return node


def _properties(pairs: Sequence[tuple[str, object]]) -> ET.Element:
    props = ET.Element("properties")
    for name, value in pairs:
        props.append(_element("property", name=name, value=value))
    return props


def _phase(result: Result, name: str) -> dict[str, Any]:
    phase = result.phases.get(name)
    return phase if isinstance(phase, dict) else {}


def _reason(result: Result, phase: str | None, longrepr: str) -> str:
    """The one-line reason, like pytest's ``reprcrash.message``: the result's message when it
    belongs to this phase, else the first ``E`` line of the traceback, else its last line."""
    if result.message and (phase is None or result.when in (None, phase)):
        return result.message
    lines = [line.strip() for line in longrepr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()
    return lines[-1] if lines else result.message


def _failure_text(result: Result, phase: str) -> str:
    return str(_phase(result, phase).get("longrepr") or result.longrepr or result.message)


def _error_phase(result: Result) -> str:
    """Which phase errored: setup or teardown, by the phase outcomes, else by ``when``."""
    for name in ("setup", "teardown"):
        if _phase(result, name).get("outcome") == "failed":
            return name
    return result.when if result.when in ("setup", "teardown") else "setup"


def _skip_reason(result: Result) -> tuple[str, str]:
    """(message, text) of a skip, as pytest writes them: ``reason`` and ``file:line: reason``."""
    raw = ""
    for name in ("setup", "call"):
        if _phase(result, name).get("outcome") == "skipped":
            raw = str(_phase(result, name).get("longrepr") or "")
            break
    raw = raw or result.longrepr
    where, reason = "", result.message
    try:  # pytest's skip longrepr is the tuple (file, lineno, "Skipped: reason")
        parsed = ast.literal_eval(raw) if raw.startswith("(") else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, tuple) and len(parsed) == 3:
        where, reason = f"{parsed[0]}:{parsed[1]}: ", reason or str(parsed[2])
    elif not reason:
        reason = raw
    reason = reason.removeprefix("Skipped: ")
    return reason, (where + reason if where else raw or reason)


def _outcome_children(result: Result) -> list[ET.Element]:
    """The ``<failure>``/``<error>``/``<skipped>`` children for the final result."""
    children: list[ET.Element] = []
    outcome, cats = result.outcome, set(result.categories)
    if outcome in (Outcome.timeout, Outcome.crashed):
        text = result.longrepr or result.message or str(outcome)
        children.append(_element("failure", text, message=_reason(result, None, text) or outcome,
                                 type=outcome.value))
        return children
    subtests = [sub for sub in _phase(result, "call").get("subtests", ()) if sub.get("outcome") != "passed"]
    for sub in subtests:  # as pytest's junitxml: a <failure>/<skipped> per subtest, in the test's case
        if sub.get("outcome") == "failed":
            children.append(_element("failure", sub.get("longrepr") or sub.get("message"),
                                     message=sub.get("message") or sub.get("description")))
        elif sub.get("category") == "skipped":
            children.append(_element("skipped", sub.get("longrepr"), type="pytest.skip",
                                     message=str(sub.get("message", "")).removeprefix("Skipped: ")))
    own_failure = _phase(result, "call").get("outcome") == "failed" or not any(
        sub.get("outcome") == "failed" for sub in subtests)
    if (outcome == Outcome.failed or "failed" in cats) and own_failure:
        text = _failure_text(result, "call")
        children.append(_element("failure", text, message=_reason(result, "call", text)))
    if outcome == Outcome.error or "error" in cats:
        phase = _error_phase(result)
        text = _failure_text(result, phase)
        reason = _reason(result, phase, text)
        children.append(_element("error", text, message=f'failed on {phase} with "{reason}"'))
    if outcome == Outcome.xfailed or (not children and "xfailed" in cats):
        reason = result.message.removeprefix("reason: ")
        children.append(_element("skipped", type="pytest.xfail", message=reason))
    elif outcome == Outcome.skipped or (not children and "skipped" in cats):
        message, text = _skip_reason(result)
        children.append(_element("skipped", text, type="pytest.skip", message=message))
    return children


def _captured(result: Result, into: ET.Element) -> None:
    out = result.stdout
    if result.log:
        out = (out + "\n" if out else "") + " Captured Log ".center(80, "-") + "\n" + result.log
    if out:
        into.append(_element("system-out", out))
    if result.stderr:
        into.append(_element("system-err", result.stderr))


def _rerun_element(attempt: Result, final: Result) -> ET.Element:
    """A Surefire rerun child for one earlier failed attempt."""
    prefix = "rerun" if final.outcome.is_failure else "flaky"
    suffix = "Error" if attempt.outcome == Outcome.error else "Failure"
    text = attempt.longrepr or attempt.message
    node = _element(prefix + suffix, message=_reason(attempt, None, text), type=attempt.outcome.value)
    if text:
        node.append(_element("stackTrace", text))
    _captured(attempt, node)
    return node


def _earlier_attempts(results: Sequence[Result]) -> dict[int, list[Result]]:
    """Map ``id(final)`` to its earlier failed attempts (same variant, lower attempt number)."""
    finals: dict[str, list[Result]] = {}
    for result in final_results(results):
        finals.setdefault(result.variant_id or result.nodeid, []).append(result)
    earlier: dict[int, list[Result]] = {}
    for attempt in results:
        if attempt.final or not attempt.outcome.is_failure:
            continue
        candidates = finals.get(attempt.variant_id or attempt.nodeid, [])
        later = [f for f in candidates if f.attempt > attempt.attempt] or candidates
        if later:
            earlier.setdefault(id(later[0]), []).append(attempt)
    for attempts in earlier.values():
        attempts.sort(key=lambda r: r.attempt)
    return earlier


def _testcase(result: Result, reruns: Sequence[Result],
              variants: Mapping[str, Mapping[str, Any]] | None = None) -> ET.Element:
    variant = (variants or {}).get(result.variant_id)
    # an explored variant runs the `[baseline]` item: its name says its origin and values instead
    nodeid = (variant_name(result.nodeid, variant.get("params"), variant.get("origin"))
              if variant else result.nodeid)
    classname, name = mangle_nodeid(nodeid)
    attrs: dict[str, object] = {"classname": classname, "name": name,
                                "file": result.file or result.nodeid.split("::")[0]}
    if result.line is not None:
        attrs["line"] = result.line
    attrs["time"] = f"{result.duration:.3f}"
    case = ET.Element("testcase", {k: xml_safe(v) for k, v in attrs.items()})
    props: list[tuple[str, object]] = [("worker", result.worker), ("variant_id", result.variant_id),
                                       ("attempt", result.attempt)]
    if result.flaky:
        props.append(("flaky", "true"))
    case.append(_properties(props))
    case.extend(_outcome_children(result))
    case.extend(_rerun_element(attempt, result) for attempt in reruns)
    _captured(result, case)
    return case


def _collect_error_case(error: dict[str, Any]) -> ET.Element:
    nodeid = str(error.get("nodeid", ""))
    classname, name = mangle_nodeid(nodeid)
    case = _element("testcase", classname=classname, name=name, file=nodeid.split("::")[0],
                    time="0.000")
    case.append(_element("error", str(error.get("longrepr") or ""), message="collection failure"))
    return case


def junit_tree(run: Run, results: Sequence[Result],
               collect_errors: Sequence[dict[str, Any]] = (),
               variants: Mapping[str, Mapping[str, Any]] | None = None) -> ET.Element:
    """The ``<testsuites>`` element for a run (what :func:`write_junit` writes)."""
    earlier = _earlier_attempts(results)
    cases = [_collect_error_case(e) for e in collect_errors]
    cases += [_testcase(r, earlier.get(id(r), []), variants) for r in final_results(results)]
    counts = {tag: sum(1 for c in cases if c.find(tag) is not None)
              for tag in ("failure", "error", "skipped")}
    duration = run.duration
    if not duration and run.finished_at is not None:
        duration = max((run.finished_at - run.started_at).total_seconds(), 0.0)
    suite = _element("testsuite", name="testfleet", errors=counts["error"],
                     failures=counts["failure"], skipped=counts["skipped"], tests=len(cases),
                     time=f"{duration:.3f}", timestamp=run.started_at.isoformat(),
                     hostname=platform.node())
    props: list[tuple[str, object]] = [("run_id", run.run_id), ("seed", run.seed),
                                       ("backend", run.backend), ("workers", run.workers)]
    if run.git_sha:
        props.append(("git_sha", run.git_sha))
    suite.append(_properties(props))
    suite.extend(cases)
    root = ET.Element("testsuites", name="testfleet tests")
    root.append(suite)
    return root


def write_junit(path: str | os.PathLike[str], run: Run, results: Sequence[Result],
                collect_errors: Sequence[dict[str, Any]] = (),
                variants: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write the run's JUnit XML to ``path`` atomically (parents created); return the path.
    ``variants`` (variant id -> origin and params) names explored variants by their values."""
    tree = junit_tree(run, results, collect_errors, variants)
    ET.indent(tree)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree, encoding="unicode")
    return atomic_write_text(path, text + "\n")
