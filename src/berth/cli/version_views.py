"""Model versions as people read them: what an LLM version or a custom container is, in a
line or in fields."""

from __future__ import annotations

import shlex
from typing import Any

from berth.cli.output import short_bytes, short_count

Json = dict[str, Any]
LLM_FORMATS = ("gguf", "huggingface")
CONTAINER = "container"
PROBES = ("startup_probe", "health_probe", "liveness_probe")


def registered(version: Json) -> str:
    """``Registered NAME version N (FORMAT[: summary]).``"""
    summary = version_summary(version)
    what = f"{version['format']}: {summary}" if summary else version["format"]
    return f"Registered {version['name']} version {version['version']} ({what})."


def version_summary(version: Json) -> str:
    """One line on what an LLM version is: ``llama, 135M parameters, context 8,192, Q4_1``;
    or what a custom container runs: ``image NAME`` or ``python server.py``."""
    details = version.get("details") or {}
    if version.get("format") == CONTAINER:
        spec = details.get("container_spec") or {}
        if spec.get("image_uri"):
            return f"image {spec['image_uri']}"
        return shlex.join(spec.get("command") or [])
    if version.get("format") not in LLM_FORMATS:
        return ""
    parts = [
        details.get("architecture"),
        _parameters(details),
        f"context {details['context_length']:,}" if details.get("context_length") else None,
        details.get("quantization"),
    ]
    return ", ".join(part for part in parts if part)


def llm_fields(details: Json) -> list[tuple[str, Any]]:
    if "architecture" not in details:
        return []
    context = details.get("context_length")
    template = details.get("chat_template")
    count = details.get("parameter_count")
    weights = details.get("weights")
    files = ", ".join(weights) if isinstance(weights, list) else weights
    return [
        ("llm name", details.get("name")),
        ("architecture", details["architecture"]),
        ("task", details.get("task")),
        ("parameters", f"{short_count(count)} ({count:,})" if count else None),
        ("context length", f"{context:,} tokens" if context else None),
        ("embedding length", details.get("embedding_length")),
        ("quantization", details.get("quantization")),
        ("weights", f"{files} ({short_bytes(details['file_size_bytes'])})"),
        ("chat template", f"{len(template):,} characters" if template else "none"),
    ]


def container_fields(details: Json) -> list[tuple[str, Any]]:
    """A custom container's spec, a line a field; only what the spec gives, and where it gives
    no route, what Vertex's contract does instead."""
    spec = details.get("container_spec")
    if spec is None:
        return []
    env = spec.get("env") or []
    ports = spec.get("ports") or []
    fields: list[tuple[str, Any]] = [
        ("image", spec.get("image_uri") or "none: a process in the model's environment"),
        ("command line", _command_line(spec)),
        ("env", " ".join(shlex.quote(f"{e['name']}={e['value']}") for e in env) or None),
        ("port", ports[0]["container_port"] if ports else "the one berth gives in AIP_HTTP_PORT"),
        ("predict route", spec.get("predict_route") or "Vertex's default, in AIP_PREDICT_ROUTE"),
        ("health route", spec.get("health_route") or "Vertex's default, in AIP_HEALTH_ROUTE"),
        (
            "raw invoke",
            "/invoke/{path} reaches any path" if spec.get("invoke_route_prefix") else None,
        ),
        ("shared memory", _given(spec.get("shared_memory_size_mb"), "MB")),
        ("deployment timeout", _given(spec.get("deployment_timeout"), "s")),
        *((name.replace("_", " "), _probe(spec[name])) for name in PROBES if name in spec),
        ("task", details.get("task")),
    ]
    return [(label, value) for label, value in fields if value is not None]


def _command_line(spec: Json) -> str:
    command = [*(spec.get("command") or []), *(spec.get("args") or [])]
    line = shlex.join(command)
    if spec.get("image_uri") and not spec.get("command"):
        return f"the image's entrypoint {line}".rstrip()
    return line


def _probe(probe: Json) -> str:
    """``GET /ready on port 8080, every 10 s, timeout 1 s, fails after 3, passes after 1,
    first after 0 s``."""
    if "http_get" in probe:
        port = probe["http_get"].get("port")
        action = f"GET {probe['http_get']['path']}" + (f" on port {port}" if port else "")
    elif "tcp_socket" in probe:
        port = probe["tcp_socket"].get("port")
        action = "TCP connect" + (f" to port {port}" if port else "")
    else:
        action = f"run {shlex.join(probe['exec']['command'])}"
    return (
        f"{action}, every {probe['period_seconds']} s, timeout {probe['timeout_seconds']} s, "
        f"fails after {probe['failure_threshold']}, passes after {probe['success_threshold']}, "
        f"first after {probe['initial_delay_seconds']} s"
    )


def _given(value: float | None, unit: str) -> str | None:
    return None if value is None else f"{value:g} {unit}"


def _parameters(details: Json) -> str | None:
    count = details.get("parameter_count")
    return f"{short_count(count)} parameters" if count else None
