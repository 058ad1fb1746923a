"""The one error tree of berth; every user-facing failure is one of these.

Each error carries the Databricks ``error_code`` and the HTTP status it maps to, so a
single handler turns any of them into ``{"error_code": ..., "message": ...}``::

    BerthError (500 INTERNAL_ERROR)
    ├── BadRequest (400 BAD_REQUEST)             unparsable body, wrong input format
    ├── InvalidParameter (400 INVALID_PARAMETER_VALUE)
    ├── PayloadTooLarge (413 BAD_REQUEST)        a body or upload over a cap, the cap named
    ├── Unauthenticated (401 UNAUTHENTICATED)
    ├── PermissionDenied (403 PERMISSION_DENIED)
    ├── NotFound (404 RESOURCE_DOES_NOT_EXIST)
    ├── AlreadyExists (409 RESOURCE_ALREADY_EXISTS)
    ├── Conflict (409 RESOURCE_CONFLICT)
    ├── RateLimited (429 REQUEST_LIMIT_EXCEEDED, Retry-After)
    ├── Unavailable (503 TEMPORARILY_UNAVAILABLE, Retry-After)
    │   └── LeaseLost                            this server no longer holds the controller lease
    └── DeadlineExceeded (504 DEADLINE_EXCEEDED)

Lower-level errors (SQLAlchemy, httpx, uv) are translated where they are caught and chained
with ``raise ... from exc``.
"""

from __future__ import annotations


class BerthError(Exception):
    """Base of every error berth reports to a user."""

    error_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


class BadRequest(BerthError):
    error_code = "BAD_REQUEST"
    http_status = 400


class InvalidParameter(BerthError):
    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class PayloadTooLarge(BerthError):
    error_code = "BAD_REQUEST"
    http_status = 413


class Unauthenticated(BerthError):
    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(BerthError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class NotFound(BerthError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(BerthError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class Conflict(BerthError):
    error_code = "RESOURCE_CONFLICT"
    http_status = 409


class RateLimited(BerthError):
    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429


class Unavailable(BerthError):
    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class LeaseLost(Unavailable):
    """A controller write refused: another server acquired the lease since (fencing)."""


class DeadlineExceeded(BerthError):
    error_code = "DEADLINE_EXCEEDED"
    http_status = 504
