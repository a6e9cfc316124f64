"""Submitting and cancelling runs, and the WebSockets that push every run's events.

``POST /runs``: the body is the project as a gzip'd tar (``testfleet submit`` packs it honouring
.gitignore); ``arg`` (repeated) are the ``testfleet run`` arguments; ``tty`` and ``columns`` ask
for the console text a terminal of that width would show. The run is queued at once; its events
follow on ``/ws/runs/{run_id}``.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from testfleet.service.errors import ApiError, ErrorResponse
from testfleet.service.runs import SubmittedRun, console_env, new_run_id, refused_option
from testfleet.service.state import service_of

__all__ = ["router"]

router = APIRouter()

BATCH_EVERY = 0.025  # seconds: the most a batched WebSocket holds an event back

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 415, 422)}
_SUBMIT_PARAMS = {"arg", "tty", "columns", "token"}
_ARCHIVE_TYPES = {"application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/octet-stream"}


class Submitted(BaseModel):
    run_id: str
    status: str
    events: str  # the WebSocket path of the run's events


class Cancelled(BaseModel):
    run_id: str
    status: str


@router.post("/runs", status_code=201, response_model=Submitted, responses=_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/gzip": {"schema": {"type": "string", "format": "binary"}}}}})
async def submit_run(
    request: Request,
    arg: Annotated[list[str] | None, Query(description="A `testfleet run` argument (repeat it).")] = None,
    tty: Annotated[bool, Query(description="Console text as a terminal would show it.")] = False,
    columns: Annotated[int, Query(ge=20, le=1000, description="The terminal's width.")] = 100,
) -> Submitted:
    """Queue a run of the project in the body (a gzip'd tar) with ``testfleet run`` arguments."""
    from testfleet.service import archive, auth

    state = service_of(request)
    unknown = sorted(set(request.query_params) - _SUBMIT_PARAMS)
    if unknown:
        raise ApiError(400, f"unknown query parameter {unknown[0]!r}", source="request", place=unknown[0],
                       expected=", ".join(sorted(_SUBMIT_PARAMS)))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _ARCHIVE_TYPES:
        raise ApiError(415, f"the body is {kind or 'untyped'}, not a project archive", source="request",
                       place="Content-Type", expected="application/gzip (a gzip'd tar: `testfleet submit`)")
    argv = list(arg or [])
    refused = refused_option(argv)
    if refused is not None:
        raise ApiError(400, f"{refused} is set by the server", source="request", place="arg",
                       expected="`testfleet run` options other than --store, --run-id, --dashboard")
    data = await auth.read_limited(request, state.max_upload)
    run_id = new_run_id()
    project = state.workdir / run_id / "project"
    try:
        archive.unpack(data, project, max_bytes=state.max_upload * 8)
    except Exception:
        shutil.rmtree(state.workdir / run_id, ignore_errors=True)
        raise
    env = console_env(tty, columns)
    run = state.runs.submit(SubmittedRun(run_id=run_id, argv=argv, project=project, owned=True, env=env))
    return Submitted(run_id=run.run_id, status=run.status, events=f"/ws/runs/{run.run_id}")


@router.post("/runs/{run_id}/cancel", status_code=202, response_model=Cancelled, responses=_ERRORS)
def cancel_run(run_id: str, request: Request) -> Cancelled:
    """Cancel a queued or running run (a running one is interrupted as Ctrl-C would: exit 2)."""
    from testfleet.service import auth

    state = service_of(request)
    run = state.runs.get(run_id)
    if run is None:
        raise ApiError(404, f"no run {run_id} on this server", source="request", place="run_id",
                       expected="a run submitted to this server")
    if not auth.can_cancel(state, request):
        raise ApiError(403, "cancelling needs the server's token", source="request", place="Authorization")
    if not state.runs.cancel(run_id):
        raise ApiError(409, f"run {run_id} has already ended", source="request", place="run_id",
                       expected="a queued or running run")
    return Cancelled(run_id=run_id, status="cancelling")


async def _until_closed(websocket: WebSocket) -> None:
    """Returns when the client goes away (what it sends is not read: the stream is one-way)."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (RuntimeError, WebSocketDisconnect):  # already closed from this side
        return


async def _stream(websocket: WebSocket, after: int, accept: Any, stop_at_end: str | None) -> None:
    state = service_of(websocket)
    await websocket.accept()
    subscription = state.hub.subscribe(after, accept)
    # a client that leaves while nothing is coming is noticed at once, not at the next event:
    # its handler and subscription do not outlive it
    closed = asyncio.ensure_future(_until_closed(websocket))
    # ?batch=1 (the dashboard): what has come since the last send goes as one JSON array, at most
    # every BATCH_EVERY seconds, so a busy run costs a few dozen messages a second per page, not
    # one per event (per message: a wakeup, an encoding, a frame, the browser's IPC)
    batch = websocket.query_params.get("batch") == "1"
    try:
        while True:
            if batch:
                await asyncio.sleep(BATCH_EVERY)
            waiting = asyncio.ensure_future(subscription.next_events())
            await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                return
            events = waiting.result()
            ended = stop_at_end is not None and any(
                e["kind"] == "end" and e.get("run_id") == stop_at_end for e in events)
            if batch:
                await websocket.send_text("[" + ",".join(state.hub.encoded(e) for e in events) + "]")
            else:
                for event in events:
                    await websocket.send_text(state.hub.encoded(event))
            if ended:
                await websocket.close()
                return
    except WebSocketDisconnect:
        pass
    finally:
        closed.cancel()
        subscription.close()


@router.websocket("/ws/runs/{run_id}")
async def run_events(websocket: WebSocket, run_id: str, after: int = 0) -> None:
    """Every event of the run after sequence number ``after``, then live, until its ``end``."""
    state = service_of(websocket)
    if not state.hub.knows(run_id) and (state.runs is None or state.runs.get(run_id) is None):
        await websocket.accept()  # then closed with a reason a browser can read (not a bare 1006)
        await websocket.close(code=4404, reason=f"no live run {run_id} on this server")
        return
    await _stream(websocket, after, lambda e: e.get("run_id") == run_id, stop_at_end=run_id)


_LIST_KINDS = ("run", "collected", "end")


@router.websocket("/ws/events")
async def all_events(websocket: WebSocket, after: int = 0) -> None:
    """Every run's ``run``, ``collected`` and ``end`` events after ``after``, then live."""
    await _stream(websocket, after, lambda e: e.get("kind") in _LIST_KINDS, stop_at_end=None)
