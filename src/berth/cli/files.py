"""Specs read from files the user names: JSON, or YAML (which JSON also is)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from berth.cli.output import fail_input

Json = dict[str, Any]


def load_spec(path: Path) -> Json:
    """A JSON object from a .json file, or from YAML (which JSON also is) for any other name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise fail_input(f"cannot read {path}: {reason}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise fail_input(f"cannot parse {path}{_where(exc)}") from exc
    if not isinstance(data, dict):
        raise fail_input(f"{path} must hold a mapping (JSON object), not {type(data).__name__}")
    try:
        json.dumps(data)
    except TypeError as exc:
        raise fail_input(f"{path} holds a value JSON cannot carry ({exc}); quote it") from exc
    return data


def _where(exc: ValueError | yaml.YAMLError) -> str:
    """`` (line L, column C): what the parser expected``, for JSON and YAML alike."""
    if isinstance(exc, json.JSONDecodeError):
        return f" (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f" (line {mark.line + 1}, column {mark.column + 1}): {exc.problem}"
    return f": {exc}"
