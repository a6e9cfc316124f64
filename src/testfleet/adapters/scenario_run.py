"""Running an HTTP scenario (see :mod:`testfleet.adapters.http_scenarios`) against a SUT.

Steps run in order and the run stops at the first failing step, since later steps depend on
what earlier ones created or extracted. A refused connection, a timeout or any other transport
error is a failing step with a message, never an exception.

One execution is the I/O-free generator :func:`execute`; :func:`run_scenario` drives it with a
synchronous ``httpx.Client`` here, :mod:`testfleet.adapters.scenario_async` with an
``httpx.AsyncClient``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema

if TYPE_CHECKING:
    from testfleet.adapters.http_scenarios import Scenario, Step

_SNIPPET = 200


@dataclass
class StepResult:
    name: str
    method: str
    url: str
    status: int | None  # None when no answer came
    latency_ms: float | None
    ok: bool
    failures: list[str] = field(default_factory=list)
    extracted: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScenarioResult:
    scenario: str  # the scenario's name
    params: dict[str, Any]
    ok: bool
    steps: list[StepResult]
    message: str  # the first failure, or "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_scenario(scenario: Scenario, base_url: str, params: dict[str, Any] | None = None, *,
                 client: httpx.Client | None = None, timeout: float = 10.0) -> ScenarioResult:
    """Run every step against ``base_url``; ``params`` overlay the space's baseline."""
    own = client is None
    http = client if client is not None else httpx.Client(timeout=timeout)
    execution = execute(scenario, base_url, params, timeout)
    try:
        call = next(execution)
        while True:
            started = time.perf_counter()
            try:
                answer: httpx.Response | Exception = http.request(call.method, call.url,
                                                                  **call.kwargs)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                answer = exc
            call = execution.send(Answer(answer, (time.perf_counter() - started) * 1000))
    except StopIteration as done:
        return done.value
    finally:
        if own:
            http.close()


@dataclass
class Call:
    """One request an execution wants sent: ``http.request(method, url, **kwargs)``."""

    method: str
    url: str
    kwargs: dict[str, Any]


@dataclass
class Answer:
    """What came back for a :class:`Call`: the response or the transport error, and the time."""

    response: httpx.Response | Exception
    latency_ms: float


def execute(scenario: Scenario, base_url: str, params: dict[str, Any] | None,
            timeout: float) -> Generator[Call, Answer, ScenarioResult]:
    """One execution of the scenario as a generator, free of any I/O: it yields the request of
    each step, is sent the :class:`Answer`, checks and extracts, and returns the result. The
    synchronous and the asyncio runners both drive it, so they cannot differ in what they check
    or say. Steps stop at the first failing one."""
    values = {**scenario.baseline(), **(params or {})}
    env = dict(values)
    results: list[StepResult] = []
    for index, step in enumerate(scenario.steps):
        call, contains = _prepare(step, index, base_url, env, timeout)
        answer = yield call
        result = _judge(step, call, contains, answer)
        results.append(result)
        if not result.ok:
            message = (f"step {result.name!r} ({result.method} {result.url}): "
                       + "; ".join(result.failures))
            return ScenarioResult(scenario.name, values, False, results, message)
        env.update(result.extracted)
    return ScenarioResult(scenario.name, values, True, results, "passed")


async def drive_async(scenario: Scenario, base_url: str, params: dict[str, Any] | None,
                      timeout: float, send: Callable[[Call], Awaitable[Any]],
                      on_latency: Callable[[float], None] | None = None) -> ScenarioResult:
    """One execution on asyncio: each request of :func:`execute` goes through ``send`` (which
    answers a response or the transport error, never raises one), timed; ``on_latency(ms)`` is
    called after each. Both async engines (httpx, aiohttp) are this loop with their own send."""
    execution = execute(scenario, base_url, params, timeout)
    try:
        call = next(execution)
        while True:
            started = time.perf_counter()
            response = await send(call)
            latency_ms = (time.perf_counter() - started) * 1000
            if on_latency is not None:
                on_latency(latency_ms)
            call = execution.send(Answer(response, latency_ms))
    except StopIteration as done:
        return done.value


def _prepare(step: Step, index: int, base_url: str, env: dict[str, Any],
             timeout: float) -> tuple[Call, list[str]]:
    from testfleet.adapters.http_scenarios import render

    request, place = step.request, f"steps[{index}] ({step.name})"
    path = render(request.path, env, place=f"{place}.request.path", path=True)
    url = base_url.rstrip("/") + path
    kwargs: dict[str, Any] = {
        "params": render(request.query, env, place=f"{place}.request.query") or None,
        "headers": {k: _header(v) for k, v in
                    render(request.headers, env, place=f"{place}.request.headers").items()},
        "timeout": timeout,
    }
    if request.has_json:
        kwargs["json"] = render(request.json, env, place=f"{place}.request.json")
    elif request.body is not None:
        kwargs["content"] = _header(render(request.body, env, place=f"{place}.request.body"))
    contains = [str(render(c, env, place=f"{place}.expect.contains"))
                for c in step.expect.contains]
    return Call(request.method, url, kwargs), contains


def _judge(step: Step, call: Call, contains: list[str], answer: Answer) -> StepResult:
    result = StepResult(step.name, call.method, call.url, None, answer.latency_ms, False)
    response = answer.response
    if isinstance(response, Exception):
        reason = str(response) or type(response).__name__
        result.failures.append(f"no response: {type(response).__name__}: {reason}")
        return result
    result.status = response.status_code
    result.failures = _check(step, response, answer.latency_ms, contains)
    if not result.failures and step.extract:
        result.extracted, problems = _extract(step, response)
        result.failures += problems
    result.ok = not result.failures
    return result


def _header(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def _check(step: Step, response: httpx.Response, latency_ms: float,
           contains: list[str]) -> list[str]:
    expect, failures = step.expect, []
    status = response.status_code
    if expect.status is not None and status not in expect.status:
        failures.append(f"status {status}, expected one of {_statuses(expect.status)} "
                        f"(body: {_snippet(response.text)!r})")
    elif expect.status is None and status >= 400:
        failures.append(f"status {status}, expected a status below 400 "
                        f"(body: {_snippet(response.text)!r})")
    if expect.max_latency_ms is not None and latency_ms > expect.max_latency_ms:
        failures.append(f"latency {latency_ms:.3f} ms, expected at most "
                        f"{expect.max_latency_ms:g} ms")
    if expect.schema is not None:
        failures += _schema_failures(expect.schema, response)
    text = response.text
    for needle in contains:
        if needle not in text:
            failures.append(f"body does not contain {needle!r} (body: {_snippet(text)!r})")
    if expect.regex is not None and not expect.regex.search(text):
        failures.append(f"body does not match regex {expect.regex.pattern!r} "
                        f"(body: {_snippet(text)!r})")
    return failures


def _statuses(codes: list[int]) -> str:
    """``[200, 201]`` as written; a whole class of 100 codes as ``2xx``."""
    parts: list[str] = []
    have = set(codes)
    for cls in range(1, 6):
        block = set(range(cls * 100, cls * 100 + 100))
        if block <= have:
            parts.append(f"{cls}xx")
            have -= block
    return "[" + ", ".join(parts + [str(c) for c in sorted(have)]) + "]"


def _schema_failures(schema: Any, response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [(f"body is not JSON, expected one matching the schema "
                 f"(body: {_snippet(response.text)!r})")]
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return []
    return [f"body does not match the schema at {error.json_path}: {error.message}"]


def _extract(step: Step, response: httpx.Response) -> tuple[dict[str, Any], list[str]]:
    try:
        body = response.json()
    except ValueError:
        return {}, [(f"cannot extract {', '.join(step.extract)}: the body is not JSON "
                     f"(body: {_snippet(response.text)!r})")]
    extracted, failures = {}, []
    for name, expression in step.extract.items():
        matches = expression.find(body)
        if not matches:
            failures.append(f"extract {name}: {step.extract_text[name]} matched nothing in "
                            f"the body {_snippet(response.text)!r}")
        else:
            extracted[name] = matches[0].value
    return extracted, failures
