"""JSON errors of the service: the CLI's one clear message (what, where, what was expected) as
``{"error": {"message", "source", "place", "expected"}}`` with a 4xx status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from testfleet.errors import TestfleetError

__all__ = ["ApiError", "ErrorBody", "ErrorResponse", "error_response", "install_error_handlers"]


class ErrorBody(BaseModel):
    message: str
    source: str | None = None
    place: str | None = None
    expected: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raise in an endpoint: answered with ``status`` and the JSON error body."""

    def __init__(self, status: int, message: str, *, source: str | None = None,
                 place: str | None = None, expected: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(message=message, source=source, place=place, expected=expected)


def error_response(status: int, message: str, *, source: str | None = None, place: str | None = None,
                   expected: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(message=message, source=source, place=place, expected=expected)
    return JSONResponse({"error": body.model_dump()}, status_code=status, headers=headers)


def _place(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the service answers with has the JSON error body, validation errors included."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.body.model_dump()}, status_code=exc.status)

    @app.exception_handler(TestfleetError)
    async def _testfleet_error(_request: Request, exc: TestfleetError) -> JSONResponse:
        return error_response(400, exc.message, source=exc.source, place=exc.place, expected=exc.expected)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return error_response(422, str(first.get("msg", "invalid request")), source="request",
                              place=_place(first.get("loc", ())), expected=first.get("type"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), source="request",
                              headers=getattr(exc, "headers", None))
