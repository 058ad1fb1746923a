"""``berth serve --demo``: registers and deploys the bundled example model via the REST API."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from berth.client import ApiError, BerthClient

DEMO = "iris-demo"
DEMO_ARTIFACT = Path(__file__).resolve().parent.parent / "demo" / "iris_model"
DEMO_QUERY = {
    "dataframe_split": {
        "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
    }
}

console = Console(stderr=True)


def install(base_url: str, token: str | None, token_file: Path) -> None:
    with BerthClient(base_url, token) as client:
        try:
            client.models.create(DEMO, description="Bundled example: iris classifier.")
        except ApiError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        versions = client.models.list_versions(DEMO)
        version = (
            versions[-1]
            if versions
            else client.models.create_version(DEMO, source=str(DEMO_ARTIFACT))
        )
        try:
            client.endpoints.get(DEMO)
        except ApiError as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            entity = {"entity_name": DEMO, "entity_version": version["version"]}
            client.endpoints.create({"name": DEMO, "config": {"served_entities": [entity]}})
        with console.status(f"Deploying endpoint [bold]{DEMO}[/bold]…"):
            state = client.endpoints.wait(DEMO, timeout_s=300)["state"]
    if state.get("ready") != "READY":
        console.print(f"[red]Demo endpoint {DEMO} is not ready:[/red] {state}")
        return
    body = json.dumps(DEMO_QUERY)
    console.print(
        f"[green]Demo ready:[/green] endpoint [bold]{DEMO}[/bold] serves model {DEMO} "
        f"version {version['version']}. Query it:\n\n"
        f"  curl -s {base_url}/serving-endpoints/{DEMO}/invocations \\\n"
        f'    -H "Authorization: Bearer $(cat {token_file})" \\\n'
        f"    -d '{body}'\n",
        soft_wrap=True,
    )
