"""``berth serve --demo``: registers the bundled example model through the REST API."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from berth.client import ApiError, BerthClient

DEMO_MODEL = "iris-demo"
DEMO_ARTIFACT = Path(__file__).resolve().parent.parent / "demo" / "iris_model"

console = Console(stderr=True)


def install(base_url: str, token: str | None) -> None:
    with BerthClient(base_url, token) as client:
        try:
            client.models.create(DEMO_MODEL, description="Bundled example: iris classifier.")
        except ApiError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.models.create_version(DEMO_MODEL, source=str(DEMO_ARTIFACT))
    console.print(
        f"[green]Demo:[/green] registered model [bold]{DEMO_MODEL}[/bold] "
        f"version {version['version']} ({version['format']}).\n"
        f"  try: BERTH_HOST={base_url} BERTH_TOKEN=$(cat ~/.berth/admin-token) "
        f"berth models versions {DEMO_MODEL}"
    )
