"""A real Chromium (Debian's package, installed when missing) driven by Playwright's Python
package, for the console's tests. Playwright never downloads a browser here: it is pointed at
the system's binary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.support.servers import BerthServer
from tests.support.system import ensure_installed

SCREENSHOTS = os.environ.get("BERTH_CONSOLE_SCREENSHOTS")
"""A folder: when set, the console tests save the screenshots the docs show there."""


def chromium() -> str:
    return ensure_installed(
        "chromium", lambda: shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=chromium(),
        # Root in a container: Chromium's own sandbox needs user namespaces it may not get.
        args=["--no-sandbox", "--disable-dev-shm-usage"],
    )
    yield launched
    launched.close()


class Console:
    """One browser tab on the console, failing the test on any script error it logs."""

    def __init__(self, browser: Browser, server: BerthServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # A refused API call is logged by the browser as a failed resource; the page shows it.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console error: {message.text}")

    def open(self, path: str = "/console/") -> Page:
        self.page.goto(f"{self.server.url}{path}")
        return self.page

    def sign_in(self, token: str | None = None) -> Page:
        page = self.open()
        page.get_by_label("Token").fill(token or self.server.token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Serving endpoints").wait_for()
        return page

    def screenshot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))

    def close(self) -> None:
        self.context.close()
        assert not self.errors, "\n".join(self.errors)


@pytest.fixture
def console(browser: Browser, server: BerthServer) -> Iterator[Console]:
    tab = Console(browser, server)
    yield tab
    tab.close()
