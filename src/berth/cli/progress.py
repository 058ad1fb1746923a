"""Live views while the server works: an endpoint's served entities as it deploys, and a
model version's calibration as it is measured."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.spinner import Spinner
from rich.table import Table

from berth.cli.output import console
from berth.client import BerthClient

Json = dict[str, Any]
CALIBRATION_POLL_S = 0.25

STYLE = {
    "DEPLOYMENT_READY": "green",
    "DEPLOYMENT_FAILED": "red",
    "DEPLOYMENT_ABORTED": "yellow",
}


def wait_for(client: BerthClient, name: str, timeout_s: float) -> Json:
    """Poll ``name`` until it settles, redrawing progress; returns the last endpoint."""
    started = time.monotonic()
    with Live(console=console, refresh_per_second=8, transient=True) as live:

        def redraw(endpoint: Json) -> None:
            live.update(_view(endpoint, time.monotonic() - started))

        return client.endpoints.wait(name, timeout_s=timeout_s, on_poll=redraw)


def _view(endpoint: Json, elapsed: float) -> Group:
    state = endpoint.get("state", {})
    doc = endpoint.get("pending_config") or endpoint.get("config") or {}
    title = (
        f"{endpoint['name']}: config v{doc.get('config_version', '?')} "
        f"{state.get('config_update', '')}, {state.get('ready', '')} ({elapsed:.0f}s)"
    )
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    for column in ("served entity", "deployment", "message"):
        table.add_column(column)
    for entity in doc.get("served_entities", []):
        entity_state = entity.get("state", {})
        deployment = entity_state.get("deployment", "")
        style = STYLE.get(deployment, "cyan")
        table.add_row(
            entity.get("name", ""),
            f"[{style}]{deployment.removeprefix('DEPLOYMENT_')}[/{style}]",
            entity_state.get("deployment_state_message", ""),
        )
    settling = state.get("config_update") == "IN_PROGRESS" or state.get("ready") != "READY"
    header = Spinner("dots", title) if settling else title
    return Group(header, table)


def follow_calibration(client: BerthClient, name: str, version: str, timeout_s: float) -> Json:
    """Start calibrating the version again and follow it with a progress bar until it ends;
    returns its last progress (``state`` DONE with ``calibration``, or FAILED)."""
    progress = client.models.calibrate(name, version)
    deadline = time.monotonic() + timeout_s
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[phase]}[/bold]"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(progress["message"], total=1.0, phase=progress["phase"])
        while progress["state"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(CALIBRATION_POLL_S)
            progress = client.models.calibration(name, version)
            bar.update(
                task,
                completed=progress["fraction"],
                description=progress["message"],
                phase=progress["phase"],
            )
    return progress
