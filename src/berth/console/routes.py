"""Routes of the console: its assets, and its page for every path under ``/console/``."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.staticfiles import PathLike
from starlette.types import Scope

ASSETS = Path(__file__).parent / "assets"

# The token lives in the tab's session storage (no cookie, so no CSRF); what guards it is
# that the page runs no script but its own files: no inline script, nothing from elsewhere,
# and no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """Static files with the console's security headers; revalidated on each load, so an
    upgraded berth never runs a stale module beside new ones."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console on ``app``: ``/`` redirects to it, and every ``/console/...`` path
    that is not an asset answers the page, whose script then routes on the path."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @app.get("/console", include_in_schema=False)
    def console_bare() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount("/console/assets", _Assets(directory=ASSETS), name="console-assets")

    @app.get("/console/{path:path}", include_in_schema=False)
    def page(path: str) -> FileResponse:
        return FileResponse(ASSETS / "index.html", headers=SECURITY_HEADERS)
