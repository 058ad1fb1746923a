"""Reading the small YAML documents an artifact describes itself with, never the model itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from berth.core.errors import InvalidParameter


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a clear ``InvalidParameter`` naming the file otherwise."""
    try:
        document = yaml.safe_load(path.read_bytes())
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise InvalidParameter(f"{path.name} is not valid YAML{line}: {exc.problem}.") from exc
    except yaml.YAMLError as exc:
        raise InvalidParameter(f"{path.name} is not valid YAML: {exc}.") from exc
    except OSError as exc:
        raise InvalidParameter(f"{path.name} cannot be read: {exc.strerror}.") from exc
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise InvalidParameter(
            f"{path.name} must be a YAML mapping of keys to values, it is {kind}."
        )
    return document


def files_present(root: Path, names: Sequence[str]) -> list[str]:
    return [name for name in names if (root / name).is_file()]
