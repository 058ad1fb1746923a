"""Maps every failure to the Databricks error JSON ``{"error_code", "message"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from berth.core.errors import BerthError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
    409: "RESOURCE_CONFLICT",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def error_response(
    error_code: str, message: str, status: int, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(
        {"error_code": error_code, "message": message}, status_code=status, headers=headers
    )


async def _berth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BerthError)
    return error_response(exc.error_code, exc.message, exc.http_status, exc.retry_after)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(*describe_validation_errors(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    code = _STATUS_CODES.get(exc.status_code, "INTERNAL_ERROR")
    return error_response(code, message, exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the caller hears that, not the internals."""
    request_id = request.headers.get("x-request-id", "")
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    said = f" (request id {request_id})" if request_id else ""
    return error_response(
        "INTERNAL_ERROR", f"Internal error{said}; the server's log has the details.", 500
    )


def describe_validation_errors(errors: object) -> tuple[str, str, int]:
    """Turn pydantic's error list into one message naming each bad field and why."""
    assert isinstance(errors, list | tuple)
    parts: list[str] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "")
            return "BAD_REQUEST", f"Malformed JSON in request body: {detail}".rstrip(": "), 400
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] in (["body"], ["query"], ["path"]):  # FastAPI's part of the request
            loc = loc[1:]
        where = ".".join(loc) or "request body"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "INVALID_PARAMETER_VALUE", "Invalid request: " + "; ".join(parts), 400


async def _overflow(_request: Request, exc: Exception) -> JSONResponse:
    """A number past what the store holds got through a field without bounds: the caller's
    input, not a fault of the server (each such field should name its bounds)."""
    log.warning("a number in a request overflowed: %s", exc)
    return error_response(
        "INVALID_PARAMETER_VALUE", "A number in the request is too large for this field.", 400
    )


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    """A value from the request the store refuses (PostgreSQL: an integer past 64 bits, a
    string past its column's length): the caller's error, not the server's."""
    assert isinstance(exc, DataError)
    log.warning("a value in a request was refused by the store: %s", exc.orig)
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else ""
    return error_response(
        "INVALID_PARAMETER_VALUE", f"A value in the request is out of range: {detail}", 400
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BerthError, _berth_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
