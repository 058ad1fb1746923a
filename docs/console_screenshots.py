"""Makes the console screenshots in docs/: a scratch ``berth serve`` with a few endpoints (the
iris example, a two-version split, one that fails to load, SmolLM2 from the model garden), some
minutes of traffic so the charts have a shape, then Debian's Chromium through Playwright.

Run: ``./uvw run python docs/console_screenshots.py [MINUTES]`` (default 4 minutes of traffic).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from console import signed_in  # noqa: E402
from serving import TOKEN, start_berth, wait  # noqa: E402

DOCS = ROOT / "docs"
IRIS = ROOT / "src" / "berth" / "demo" / "iris_model"
FAILING = ROOT / "tests" / "fakes" / "models" / "failing_load"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def ready(api: httpx.Client, name: str) -> None:
    wait(
        lambda: api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]["ready"] == "READY",
        900,
        f"{name} to be ready",
    )


def setup(api: httpx.Client) -> None:
    api.post("/api/2.0/models", json={"name": "iris"}).raise_for_status()
    for _ in range(2):
        api.post("/api/2.0/models/iris/versions", json={"source": str(IRIS)}).raise_for_status()
    api.post("/api/2.0/models", json={"name": "fraud-scorer"}).raise_for_status()
    api.post(
        "/api/2.0/models/fraud-scorer/versions", json={"source": str(FAILING)}
    ).raise_for_status()
    api.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": "iris-ab",
            "tags": [{"key": "team", "value": "search"}, {"key": "stage", "value": "canary"}],
            "config": {
                "served_entities": [
                    {
                        "name": "iris-v1",
                        "entity_name": "iris",
                        "entity_version": "1",
                        "workload_size": "Small",
                    },
                    {
                        "name": "iris-v2",
                        "entity_name": "iris",
                        "entity_version": "2",
                        "workload_size": "Small",
                    },
                ],
                "traffic_config": {
                    "routes": [
                        {"served_entity_name": "iris-v1", "traffic_percentage": 80},
                        {"served_entity_name": "iris-v2", "traffic_percentage": 20},
                    ]
                },
            },
        },
    ).raise_for_status()
    api.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": "fraud-scorer",
            "tags": [{"key": "team", "value": "risk"}],
            "config": {
                "served_entities": [
                    {"entity_name": "fraud-scorer", "entity_version": "1", "workload_size": "Small"}
                ]
            },
        },
    ).raise_for_status()
    garden = api.post("/api/2.0/berth/garden/smollm2-135m-instruct/register", json={})
    garden.raise_for_status()
    version = garden.json()["model_version"]["version"]
    api.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": "smollm2-chat",
            "tags": [{"key": "team", "value": "assistants"}],
            "config": {
                "served_entities": [
                    {
                        "entity_name": "smollm2-135m-instruct",
                        "entity_version": str(version),
                        "workload_size": "Small",
                    }
                ]
            },
        },
    ).raise_for_status()
    api.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": "iris-demo",
            "tags": [{"key": "team", "value": "search"}],
            "config": {
                "served_entities": [
                    {"entity_name": "iris", "entity_version": "1", "workload_size": "Small"}
                ]
            },
        },
    ).raise_for_status()
    for name in ("iris-demo", "iris-ab", "smollm2-chat"):
        ready(api, name)


def traffic(url: str, seconds: float) -> None:
    """Queries at a rate that rises and falls, with a few bad requests among them."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.monotonic()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while (elapsed := time.monotonic() - started) < seconds:
            rate = 6 + 5 * math.sin(elapsed / 40)
            name = "iris-demo" if random.random() < 0.7 else "iris-ab"
            body = {"dataframe_records": [ROW] * random.randint(1, 20)}
            if random.random() < 0.03:
                body = {"dataframe_records": "not rows"}
            client.post(f"/serving-endpoints/{name}/invocations", json=body)
            time.sleep(1 / rate)


def shoot(page: Page, name: str) -> None:
    page.wait_for_timeout(600)  # let the charts draw their last frame
    page.screenshot(path=str(DOCS / f"{name}.png"))


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    home = Path(tempfile.mkdtemp(prefix="berth-docs-"))
    proc, url = start_berth(home)
    try:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        setup(api)
        api.put(
            "/api/2.0/serving-endpoints/iris-demo/ai-gateway",
            json={"usage_tracking_config": {"enabled": True}},
        ).raise_for_status()
        load = threading.Thread(target=traffic, args=(url, minutes * 60))
        load.start()
        load.join()
        with sync_playwright() as driver:
            browser, page = signed_in(driver, url)
            page.get_by_role("link", name="fraud-scorer").wait_for()
            shoot(page, "console-endpoints")
            page.goto(f"{url}/console/endpoints/iris-ab")
            page.locator(".timeline li").first.wait_for()
            shoot(page, "console-endpoint")
            page.goto(f"{url}/console/endpoints/iris-demo?tab=metrics")
            page.locator("#chart-latency canvas").wait_for()
            shoot(page, "console-endpoint-metrics")
            page.goto(f"{url}/console/endpoints/iris-demo?tab=query")
            page.get_by_label("dataframe_records").check()
            body = json.dumps({"dataframe_records": [ROW]}, indent=2)
            page.get_by_label("Request body").fill(body)
            page.get_by_role("button", name="Send request").click()
            page.get_by_label("Response").wait_for()
            shoot(page, "console-query")
            page.goto(f"{url}/console/endpoints/smollm2-chat?tab=query")
            page.get_by_label("Message").fill("Write a haiku about ships in a harbour.")
            page.get_by_role("button", name="Send").click()
            page.get_by_role("button", name="Send").wait_for(timeout=120_000)
            shoot(page, "console-playground")
            page.goto(f"{url}/console/models/iris")
            page.get_by_role("button", name="Deploy version 2").wait_for()
            shoot(page, "console-model")
            page.goto(f"{url}/console/admin?tab=usage")
            page.locator("table").first.wait_for()
            shoot(page, "console-usage")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
