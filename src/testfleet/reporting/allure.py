"""Allure 2 results (``--alluredir DIR``): the files ``allure generate`` and Allure 3 read.

Per execution (every attempt: Allure shows earlier attempts of a test as its retries) a
``<uuid>-result.json``, a ``<uuid>-container.json`` holding its setup and teardown as fixtures, and
``<uuid>-attachment.<ext>`` files: captured stdout, stderr and log, the telemetry the execution
sampled (a CSV table) and a chart of its worker's telemetry around it (SVG). Beside them
``environment.properties`` (the run), ``executor.json`` (testfleet, or the CI job when there is
one) and ``categories.json`` (timeouts and crashes apart from other broken tests).

Identities: ``historyId`` hashes the node id and the variant's parameters, so the same variant has
the same history in every run; ``testCaseId`` hashes the node id without its parameters. File
uuids are derived from (run, variant, attempt): writing the same stored run again replaces its
files instead of adding copies. Files already in the folder stay, as with allure-pytest.

``allure_schema.json`` beside this file is the result model as a JSON Schema (Allure publishes
none); :func:`validate_allure` checks a folder against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import javaproperties
import numpy as np

from testfleet.atomic import check_output, output_error
from testfleet.model import Outcome, Result, Run
from testfleet.reporting.allure_telemetry import telemetry_csv, telemetry_svg
from testfleet.reporting.variant_names import variant_name

__all__ = ["STATUS", "allure_history_id", "allure_test_case_id", "validate_allure", "write_allure",
           "write_allure_run", "write_allure_stored"]

SCHEMA_FILE = Path(__file__).with_name("allure_schema.json")
STATUS = {Outcome.passed: "passed", Outcome.failed: "failed", Outcome.error: "broken",
          Outcome.timeout: "broken", Outcome.crashed: "broken", Outcome.skipped: "skipped",
          Outcome.xfailed: "skipped", Outcome.xpassed: "passed"}
SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")
# pytest's own markers say how a test runs, not what it is about: they are not tags.
_NOT_TAGS = frozenset({"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings",
                       "requires", "explore", "subtests"}) | frozenset(SEVERITIES)
_NAMESPACE = uuid.UUID("5f1c2b9e-7a43-4c1e-9d6a-6e0f5b7e2a10")
CATEGORIES = [
    {"name": "Timed out", "description": "killed by testfleet after --timeout",
     "matchedStatuses": ["broken"], "messageRegex": "(?s)timeout:.*"},
    {"name": "Worker crashed", "description": "the test took its worker down (signal, exit, OOM)",
     "matchedStatuses": ["broken"], "messageRegex": "(?s)crashed:.*"},
    {"name": "Product defects", "matchedStatuses": ["failed"]},
    {"name": "Test defects", "matchedStatuses": ["broken"]},
]


def _uuid(*parts: Any) -> str:
    """A uuid derived from ``parts`` (JSON, ASCII-escaped: a lone surrogate in a node id is fine)."""
    return str(uuid.uuid5(_NAMESPACE, json.dumps(parts, default=str)))


def _md5(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.md5(blob.encode(), usedforsecurity=False).hexdigest()


def allure_history_id(nodeid: str, params: Mapping[str, Any] | None) -> str:
    """Allure's history key: the same node id and parameters give the same id in every run."""
    return _md5("history", nodeid, dict(params or {}))


def allure_test_case_id(nodeid: str) -> str:
    """The test as written, whatever its parameters: ``test_x[1]`` and ``test_x[2]`` share it."""
    return _md5("case", nodeid.partition("[")[0])


def _millis(moment: datetime | None, fallback: datetime) -> int:
    moment = moment or fallback
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(int(moment.timestamp() * 1000), 0)


def _span(result: Result, run: Run) -> tuple[int, int]:
    if result.started_at is None and result.finished_at is not None:
        stop = _millis(result.finished_at, run.started_at)
        return max(stop - int(result.duration * 1000), 0), stop
    start = _millis(result.started_at, run.started_at)
    stop = _millis(result.finished_at, run.started_at) if result.finished_at else start + int(result.duration * 1000)
    return start, max(stop, start)


def _suite_labels(nodeid: str) -> list[dict[str, str]]:
    """parentSuite (the folder), suite (the module), subSuite (the classes), package, as
    allure-pytest derives them from the node id."""
    path, _, rest = nodeid.partition("[")[0].partition("::")
    folder, _, module = path.rpartition("/")
    module = module.removesuffix(".py")
    classes = rest.split("::")[:-1]
    labels = []
    if folder:
        labels.append({"name": "parentSuite", "value": folder.replace("/", ".")})
    labels.append({"name": "suite", "value": module})
    if classes:
        labels.append({"name": "subSuite", "value": " > ".join(classes)})
    labels.append({"name": "package", "value": path.removesuffix(".py").replace("/", ".")})
    return labels


def _labels(result: Result, host: str, markers: Sequence[str]) -> list[dict[str, str]]:
    names = set(markers) | set(result.keywords)
    severity = next((s for s in SEVERITIES if s in names), "normal")
    labels = _suite_labels(result.nodeid)
    labels += [{"name": "host", "value": host}, {"name": "thread", "value": result.worker or "coordinator"},
               {"name": "severity", "value": severity}, {"name": "framework", "value": "testfleet"},
               {"name": "language", "value": "python"}]
    labels += [{"name": "tag", "value": m} for m in sorted(set(markers) - _NOT_TAGS)]
    return labels


def _parameters(params: Mapping[str, Any], origin: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": str(k), "value": v if isinstance(v, str) else json.dumps(v, default=str)}
                                 for k, v in params.items()]
    if origin and origin != "baseline":  # where an explored variant came from: shown, not identity
        out.append({"name": "origin", "value": origin, "excluded": True})
    return out


def _status_details(result: Result) -> dict[str, Any]:
    message = result.message
    if result.outcome in (Outcome.timeout, Outcome.crashed) and not message.startswith(result.outcome.value):
        message = f"{result.outcome.value}: {message}" if message else result.outcome.value
    elif result.outcome == Outcome.xfailed:
        message = "XFAIL " + message.removeprefix("reason: ") if message else "XFAIL"
    elif result.outcome == Outcome.xpassed:
        message = "XPASS " + message if message else "XPASS"
    elif result.outcome == Outcome.skipped:
        message = message.removeprefix("Skipped: ")
    details: dict[str, Any] = {}
    if message:
        details["message"] = message
    if result.longrepr and result.outcome not in (Outcome.passed, Outcome.skipped):
        details["trace"] = result.longrepr
    if result.flaky:
        details["flaky"] = True
    return details


class _Folder:
    """The files of one results folder, by name (written together at the end)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def json(self, name: str, document: Any) -> None:
        self.files[name] = json.dumps(document, separators=(",", ":")).encode()  # ASCII: a lone surrogate is fine

    def attach(self, owner: str, name: str, text: str, mime: str, ext: str) -> dict[str, str]:
        source = f"{_uuid(owner, name)}-attachment.{ext}"
        self.files[source] = text.encode("utf-8", "replace")
        return {"name": name, "source": source, "type": mime}


def _attachments(folder: _Folder, owner: str, result: Result,
                 telemetry: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
                 span: tuple[int, int]) -> list[dict[str, str]]:
    out = []
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr), ("log", result.log)):
        if text:
            out.append(folder.attach(owner, name, text, "text/plain", "txt"))
    if result.telemetry:
        out.append(folder.attach(owner, "telemetry", telemetry_csv(result.telemetry), "text/csv", "csv"))
    if telemetry:
        chart = telemetry_svg(telemetry, span[0] / 1000, span[1] / 1000, wanted=list(result.telemetry),
                              title=f"worker {result.worker}: telemetry around {result.nodeid}")
        if chart:
            out.append(folder.attach(owner, "telemetry chart", chart, "image/svg+xml", "svg"))
    return out


def _fixtures(result: Result, start: int, stop: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Setup and teardown as Allure fixtures, timed from the phases' durations."""
    made: dict[str, dict[str, Any]] = {}
    for phase in ("setup", "teardown"):
        info = result.phases.get(phase)
        if not isinstance(info, dict) or not info.get("outcome"):
            continue
        length = int(float(info.get("duration") or 0.0) * 1000)
        begin, end = (start, start + length) if phase == "setup" else (max(stop - length, start), stop)
        status = {"passed": "passed", "skipped": "skipped"}.get(str(info["outcome"]), "broken")
        fixture: dict[str, Any] = {"name": phase, "status": status, "stage": "finished",
                                   "start": begin, "stop": end}
        if status == "broken" and info.get("longrepr"):
            fixture["statusDetails"] = {"message": f"error in {phase}", "trace": str(info["longrepr"])}
        made[phase] = fixture
    return [made["setup"]] if "setup" in made else [], [made["teardown"]] if "teardown" in made else []


def _result(folder: _Folder, run: Run, result: Result, host: str, markers: Sequence[str],
            variant: Mapping[str, Any] | None,
            telemetry: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> None:
    params = dict((variant or {}).get("params") or {})
    origin = (variant or {}).get("origin")
    shown = variant_name(result.nodeid, params, origin) if origin not in (None, "baseline") else result.nodeid
    owner = _uuid(run.run_id, result.variant_id, result.nodeid, result.attempt)
    start, stop = _span(result, run)
    head, bracket, tail = shown.partition("[")  # the parameter part may hold "::" or "/"
    path, *names = head.split("::")
    name = (names[-1] if names else path) + bracket + tail
    document: dict[str, Any] = {
        "uuid": owner, "historyId": allure_history_id(result.nodeid, params),
        "testCaseId": allure_test_case_id(result.nodeid), "fullName": result.nodeid,
        "name": name, "titlePath": [*path.split("/"), *names[:-1]],
        "status": STATUS[result.outcome], "stage": "finished",
        "description": f"variant `{result.variant_id}` · attempt {result.attempt} on worker "
                       f"`{result.worker or '?'}` · run `{run.run_id}`"
                       + (f" · failure fingerprint `{result.fingerprint}`" if result.fingerprint else ""),
        "labels": _labels(result, host, markers), "parameters": _parameters(params, origin),
        "start": start, "stop": stop,
    }
    details = _status_details(result)
    if details:
        document["statusDetails"] = details
    document["attachments"] = _attachments(folder, owner, result, telemetry, (start, stop))
    folder.json(f"{owner}-result.json", document)
    befores, afters = _fixtures(result, start, stop)
    container = _uuid(owner, "container")
    folder.json(f"{container}-container.json",
                {"uuid": container, "name": result.nodeid,
                 "children": [owner], "befores": befores, "afters": afters, "start": start, "stop": stop})


def _collect_error(folder: _Folder, run: Run, error: Mapping[str, Any], host: str) -> None:
    nodeid = str(error.get("nodeid") or "collection")
    owner = _uuid(run.run_id, "collect", nodeid)
    at = _millis(run.started_at, run.started_at)
    labels = _suite_labels(nodeid) + [{"name": "host", "value": host},
                                      {"name": "framework", "value": "testfleet"},
                                      {"name": "language", "value": "python"}]
    folder.json(f"{owner}-result.json", {
        "uuid": owner, "historyId": allure_history_id(nodeid, {}), "testCaseId": allure_test_case_id(nodeid),
        "fullName": nodeid, "name": nodeid, "status": "broken", "stage": "finished",
        "statusDetails": {"message": "collection failure", "trace": str(error.get("longrepr") or "")},
        "labels": labels, "start": at, "stop": at})


def _executor(run: Run) -> dict[str, Any]:
    """Who ran it: the CI job when the environment says so (GitHub Actions, GitLab CI)."""
    env = os.environ
    base: dict[str, Any] = {"name": "testfleet", "type": "testfleet", "buildName": f"testfleet run {run.run_id}",
                            "reportName": f"testfleet run {run.run_id}"}
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        url = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env.get('GITHUB_REPOSITORY', '')}"
        base.update(name="GitHub Actions", type="github", url=url,
                    buildUrl=f"{url}/actions/runs/{env['GITHUB_RUN_ID']}",
                    buildName=f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{env.get('GITHUB_RUN_NUMBER', '')}")
        if env.get("GITHUB_RUN_NUMBER", "").isdigit():
            base["buildOrder"] = int(env["GITHUB_RUN_NUMBER"])
    elif env.get("GITLAB_CI") == "true":
        base.update(name="GitLab CI", type="gitlab", url=env.get("CI_PROJECT_URL", ""),
                    buildUrl=env.get("CI_PIPELINE_URL", ""),
                    buildName=f"{env.get('CI_JOB_NAME', 'job')} #{env.get('CI_PIPELINE_IID', '')}")
        if env.get("CI_PIPELINE_IID", "").isdigit():
            base["buildOrder"] = int(env["CI_PIPELINE_IID"])
    return base


def _environment(run: Run) -> bytes:
    where = run.settings.get("environment") or {}
    values = {"testfleet.run": run.run_id, "testfleet.seed": str(run.seed), "testfleet.backend": run.backend,
              "testfleet.workers": str(run.workers), "host": str(where.get("host") or platform.node()),
              "python": str(where.get("python") or platform.python_version()),
              "os": str(where.get("os") or f"{platform.system()} {platform.release()}")}
    if run.git_sha:
        values["git.sha"] = run.git_sha
    return javaproperties.dumps(values, timestamp=False, sort_keys=True).encode("latin-1")


def write_allure(directory: str | os.PathLike[str], run: Run, results: Sequence[Result],
                 collect_errors: Sequence[Mapping[str, Any]] = (),
                 variants: Mapping[str, Mapping[str, Any]] | None = None, *,
                 markers: Mapping[str, Sequence[str]] | None = None,
                 telemetry: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Write Allure 2 results for ``results`` (every attempt) into ``directory``; return it.

    ``variants``: variant id -> {origin, params}; ``markers``: node id -> marker names (severity
    and tags); ``telemetry``: (metric, worker) -> (epoch seconds, values), for the charts.
    """
    target = check_output(directory, "--alluredir", folder=True)
    host = str((run.settings.get("environment") or {}).get("host") or platform.node())
    by_worker: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for (metric, worker), points in (telemetry or {}).items():
        by_worker.setdefault(worker, {})[metric] = points
    folder = _Folder()
    for result in results:
        _result(folder, run, result, host, (markers or {}).get(result.nodeid, ()),
                (variants or {}).get(result.variant_id), by_worker.get(result.worker))
    for error in collect_errors:
        _collect_error(folder, run, error, host)
    folder.json("executor.json", _executor(run))
    folder.json("categories.json", CATEGORIES)
    folder.files["environment.properties"] = _environment(run)
    _write_folder(target, folder.files)
    return target


def _write_folder(target: Path, files: Mapping[str, bytes]) -> None:
    """Put ``files`` into ``target``, each whole: written into a staging folder beside it, then
    renamed in. No fsync per file (atomic_write_bytes does one): a run writes thousands of small
    files here, and 2,000 tests took 78 s that way."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise output_error(target, exc) from None
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        for name in files:
            os.replace(staging / name, target / name)
    except OSError as exc:
        raise output_error(target, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_allure_run(directory: str | os.PathLike[str], store: Any, run: Run, results: Sequence[Result],
                     collect_errors: Sequence[Mapping[str, Any]] = ()) -> Path:
    """:func:`write_allure` with what the store knows of the run: each case's markers, each
    variant's parameters, the telemetry series for the charts."""
    from testfleet.store.telemetry import TelemetryStore

    variant_ids = sorted({r.variant_id for r in results})
    params = store.variant_params(variant_ids)
    origins = dict(store.query("SELECT variant_id, origin FROM variants "
                               "WHERE variant_id IN (SELECT unnest($1::VARCHAR[]))", [variant_ids]))
    variants = {vid: {"origin": origins.get(vid), "params": values} for vid, values in params.items()}
    markers = {case.nodeid: case.markers for case in store.cases(run.run_id)}
    series = TelemetryStore(store).series(run.run_id)
    return write_allure(directory, run, results, collect_errors, variants, markers=markers, telemetry=series)


def write_allure_stored(directory: str | os.PathLike[str], store: Any, ref: str = "last") -> Path:
    """Allure results for a stored run (``testfleet report RUN --alluredir DIR``)."""
    run = store.get_run(ref)
    return write_allure_run(directory, store, run, store.results(run.run_id))


def validate_allure(directory: str | os.PathLike[str]) -> list[str]:
    """Problems with the JSON files of a results folder, against ``allure_schema.json``:
    ``file: where: what``; an empty list when every file is valid."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    kinds = {"-result.json": "testResult", "-container.json": "container",
             "executor.json": "executor", "categories.json": "categories"}
    validators = {kind: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": schema["$defs"]})
                  for kind in kinds.values()}
    problems = []
    folder = Path(directory)
    for path in sorted(folder.iterdir()):
        kind = next((k for suffix, k in kinds.items() if path.name.endswith(suffix)), None)
        if kind is None:
            continue
        validator = validators[kind]
        document = json.loads(path.read_text(encoding="utf-8"))
        for error in validator.iter_errors(document):
            problems.append(f"{path.name}: {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}")
        for attachment in document.get("attachments", []) if isinstance(document, dict) else []:
            if not (folder / str(attachment.get("source"))).is_file():
                problems.append(f"{path.name}: attachment {attachment.get('source')} is missing")
    return problems
