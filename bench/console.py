"""Benchmark: the web console's endpoint list with 500 endpoints, in Debian's Chromium.

On a scratch ``berth serve``, creates N external-model endpoints (they run no replica, so a
laptop holds hundreds), half tagged ``team=a``; then, signed in, times in a real browser:
(1) opening the list until every row is drawn, (2) filtering by tag (a server-side filter and
a redraw), (3) a name search (in the page), each beside the bare API call the page makes.
Run: ``./uvw run python bench/console.py [N]`` (default 500).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import TOKEN, start_berth  # noqa: E402

REPEATS = 5


def create_endpoints(api: httpx.Client, count: int) -> None:
    for i in range(count):
        model = {
            "name": "gpt-4o",
            "provider": "openai",
            "task": "llm/v1/chat",
            # Nothing listens there: the list never calls the provider.
            "openai_config": {
                "openai_api_key_plaintext": "sk-x",
                "openai_api_base": "http://127.0.0.1:9/v1",
            },
        }
        api.post(
            "/api/2.0/serving-endpoints",
            json={
                "name": f"bench-{i:04d}",
                "config": {"served_entities": [{"external_model": model}]},
                "tags": [
                    {"key": "team", "value": "a" if i % 2 else "b"},
                    {"key": "n", "value": str(i)},
                ],
            },
        ).raise_for_status()


def signed_in(driver: Playwright, url: str) -> tuple[Browser, Page]:
    """Debian's Chromium on a laptop-sized page, signed in to the console at ``url``."""
    browser = driver.chromium.launch(
        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
        args=["--no-sandbox", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{url}/console/")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    return browser, page


def shown(page: Page, count: int) -> None:
    """Wait, polling once a frame in the page, until the list draws ``count`` rows (Playwright's
    own text matching scans every row: it would time itself, not the page)."""
    page.wait_for_function(
        "n => document.querySelectorAll('tbody tr').length === n"
        " && document.querySelector('.count')?.textContent.startsWith(n + ' ')",
        arg=count,
        polling="raf",
    )


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms (min {min(samples) * 1000:.1f})"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    home = Path(tempfile.mkdtemp(prefix="berth-bench-console-"))
    proc, url = start_berth(home, BERTH_PROVIDERS__ALLOWED_HOSTS="127.0.0.1")
    try:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        started = time.perf_counter()
        create_endpoints(api, count)
        print(f"created {count} endpoints in {time.perf_counter() - started:.1f} s")

        def api_ms(**params: str) -> float:
            begin = time.perf_counter()
            api.get("/api/2.0/serving-endpoints", params=params).raise_for_status()
            return time.perf_counter() - begin

        with sync_playwright() as driver:
            browser, page = signed_in(driver, url)
            shown(page, count)

            opened, filtered, searched = [], [], []
            for _ in range(REPEATS):
                begin = time.perf_counter()
                page.goto(f"{url}/console/endpoints")
                shown(page, count)
                opened.append(time.perf_counter() - begin)

                begin = time.perf_counter()
                page.get_by_label("Tag").fill("team=a")
                page.get_by_role("button", name="Add filter").click()
                shown(page, count // 2)
                filtered.append(time.perf_counter() - begin)

                begin = time.perf_counter()
                page.get_by_label("Search").fill("bench-0001")
                shown(page, 1)
                searched.append(time.perf_counter() - begin)
            browser.close()

        listing = [api_ms() for _ in range(REPEATS)]
        tagged = [api_ms(tag="team=a") for _ in range(REPEATS)]
        print(f"API list of {count}:            {median_ms(listing)}")
        print(f"console: open the list, all rows: {median_ms(opened)}")
        print(f"API list filtered by tag:       {median_ms(tagged)}")
        print(f"console: tag filter, redrawn:   {median_ms(filtered)}")
        print(f"console: name search, redrawn:  {median_ms(searched)}")
        ratio = statistics.median(opened) / statistics.median(listing)
        print(f"open/API ratio: {ratio:.1f}x (the page's share: fetch, JSON, draw {count} rows)")
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
