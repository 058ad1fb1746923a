"""Model versions as people read them: what an LLM version is, in a line or in fields."""

from __future__ import annotations

from typing import Any

from berth.cli.output import short_bytes, short_count

Json = dict[str, Any]
LLM_FORMATS = ("gguf", "huggingface")


def registered(version: Json) -> str:
    """``Registered NAME version N (FORMAT[: summary]).``"""
    summary = version_summary(version)
    what = f"{version['format']}: {summary}" if summary else version["format"]
    return f"Registered {version['name']} version {version['version']} ({what})."


def version_summary(version: Json) -> str:
    """One line on what an LLM version is: ``llama, 135M parameters, context 8,192, Q4_1``."""
    details = version.get("details") or {}
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


def _parameters(details: Json) -> str | None:
    count = details.get("parameter_count")
    return f"{short_count(count)} parameters" if count else None
