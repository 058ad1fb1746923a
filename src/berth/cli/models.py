"""`berth models ...`: the model registry from the command line, through the SDK only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from berth.cli import garden
from berth.cli.files import load_spec
from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    err_console,
    fail_input,
    print_fields,
    print_json,
    print_table,
    when,
)
from berth.cli.progress import follow_calibration
from berth.cli.version_views import container_fields, llm_fields, registered, version_summary

app = typer.Typer(help="Manage registered models and their versions.", no_args_is_help=True)
app.add_typer(garden.app, name="garden")

Json = dict[str, Any]

Name = Annotated[str, typer.Argument(metavar="NAME", help="Model name.")]
Version = Annotated[str, typer.Argument(metavar="VERSION", help="Version number, e.g. 1.")]

MODEL_COLUMNS = ["name", "latest version", "creator", "updated", "description"]
VERSION_COLUMNS = ["version", "format", "model", "status", "created", "creator", "source"]


@app.command()
def register(
    name: Name,
    path: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            metavar="PATH",
            help="Artifact folder (MLmodel, score.py, one .gguf file, or a Hugging Face-style "
            "folder: config.json, .safetensors and tokenizer files), a .gguf file, or a "
            ".tar.gz/.tgz/.zip of a folder. With --container-spec, any folder, or none.",
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="Description of the version.")] = "",
    upload: Annotated[
        bool, typer.Option(help="Upload a folder even when the server runs on this machine.")
    ] = False,
    build_env: Annotated[
        bool, typer.Option(help="Build the model's environment now, so deploys never wait.")
    ] = False,
    container_spec: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="A model server of your own: Vertex AI's containerSpec (snake_case or "
            "camelCase) in a JSON or YAML file (.json is read as JSON).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="With --container-spec: the OpenAI routes its server answers "
            "(llm/v1/chat, llm/v1/completions or llm/v1/embeddings)."
        ),
    ] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """Register PATH, or a custom container, as the next version of NAME, creating the model
    if needed."""
    if path is None and container_spec is None:
        raise fail_input("Give PATH, --container-spec FILE, or both.")
    if task is not None and container_spec is None:
        raise fail_input("--task says what a custom container answers: give --container-spec.")
    spec = None if container_spec is None else load_spec(container_spec)
    with (
        api_client() as client,
        err_console.status(
            "Registering" + (" and building its environment with uv…" if build_env else "…")
        ),
    ):
        version = client.models.register(
            name,
            path,
            description=description,
            upload=upload,
            build_env=build_env,
            container_spec=spec,
            task=task,
        )
    if output is OutputFormat.json:
        print_json(version)
        return
    typer.echo(registered(version))


@app.command("list")
def list_models(output: OutputFormat = OutputOption) -> None:
    """List registered models."""
    with api_client() as client:
        models = client.models.list()
    if output is OutputFormat.json:
        print_json(models)
    else:
        print_table("Models", MODEL_COLUMNS, [_model_row(m) for m in models])


@app.command()
def get(name: Name, output: OutputFormat = OutputOption) -> None:
    """Show one model and its versions."""
    with api_client() as client:
        model = client.models.get(name)
        versions = client.models.list_versions(name)
    if output is OutputFormat.json:
        print_json({**model, "versions": versions})
        return
    print_table(f"Model {name}", [*MODEL_COLUMNS, "tags"], [[*_model_row(model), _tags(model)]])
    _print_versions(name, versions)


@app.command()
def versions(name: Name, output: OutputFormat = OutputOption) -> None:
    """List the versions of a model."""
    with api_client() as client:
        found = client.models.list_versions(name)
    if output is OutputFormat.json:
        print_json(found)
    else:
        _print_versions(name, found)


@app.command("version")
def show_version(name: Name, version: Version, output: OutputFormat = OutputOption) -> None:
    """Show one version: its source, and what its artifact holds (an LLM's architecture,
    parameters, context length and quantization; a custom container's command, ports, routes
    and probes)."""
    with api_client() as client:
        found = client.models.get_version(name, version)
    if output is OutputFormat.json:
        print_json(found)
        return
    print_fields(
        [
            ("model", found["name"]),
            ("version", found["version"]),
            ("format", found["format"]),
            ("status", found["status"]),
            ("created", when(found["creation_timestamp"])),
            ("creator", found["creator"]),
            ("source", found["source"]),
            ("description", found["description"]),
            *llm_fields(found.get("details") or {}),
            *container_fields(found.get("details") or {}),
        ]
    )


@app.command()
def delete(name: Name) -> None:
    """Delete a model and all its versions (refused while an endpoint serves one)."""
    with api_client() as client:
        client.models.delete(name)
    typer.echo(f"Deleted model {name}.")


@app.command("delete-version")
def delete_version(name: Name, version: Version) -> None:
    """Delete one version of a model (refused while an endpoint serves it)."""
    with api_client() as client:
        client.models.delete_version(name, version)
    typer.echo(f"Deleted {name} version {version}.")


@app.command()
def calibrate(
    name: Name,
    version: Version,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the run at most.")] = 900,
    output: OutputFormat = OutputOption,
) -> None:
    """Measure again the throughput chunk of an open LLM's version on the server's host: the
    tokens/s one replica sustains at the reference workload (one model unit)."""
    with api_client() as client:
        progress = follow_calibration(client, name, version, timeout)
    if progress["state"] != "DONE":
        err_console.print(f"[red]Error[/red] {escape(progress['message'])}")
        raise typer.Exit(code=1)
    calibration = progress["calibration"]
    if output is OutputFormat.json:
        print_json(calibration)
        return
    method = calibration["method"]
    typer.echo(
        f"{name} version {version}: {calibration['throughput_chunk_size']} tokens/s per "
        f"replica (one model unit) on {calibration['fingerprint']}."
    )
    typer.echo(
        f"Measured {method['tokens_per_s']} tokens/s: {method['workload']}; "
        f"{method['rounds']} rounds, {method['requests']} requests of {method['prompt_tokens']} "
        f"prompt tokens, {method['completion_tokens']} completion tokens in "
        f"{method['seconds']:.1f} s on {method['threads']} engine "
        f"thread{'' if method['threads'] == 1 else 's'}."
    )
    typer.echo(
        f"Calibration took {calibration['duration_s']:.1f} s "
        f"(calibrated {when(calibration['calibrated_at'])} UTC)."
    )


def _print_versions(name: str, versions: Sequence[Json]) -> None:
    rows = [
        [
            v["version"],
            v["format"],
            version_summary(v),
            v["status"],
            when(v["creation_timestamp"]),
            v["creator"],
            v["source"],
        ]
        for v in versions
    ]
    print_table(f"Versions of {name}", VERSION_COLUMNS, rows)


def _model_row(model: Json) -> list[Any]:
    return [
        model["name"],
        model.get("latest_version"),
        model["creator"],
        when(model["last_updated_timestamp"]),
        model["description"],
    ]


def _tags(model: Json) -> str:
    return ", ".join(f"{tag['key']}={tag['value']}" for tag in model.get("tags", []))
