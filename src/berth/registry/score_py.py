"""Validating an OCI Data Science artifact: ``score.py`` read with ``ast``, never imported.

OCI calls ``load_model()`` once and ``predict(data, model=...)`` per request, so both must be
plain top-level functions with those call shapes; ``runtime.yaml`` is optional here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from berth.core.errors import InvalidParameter
from berth.registry.documents import files_present, read_yaml_mapping

SCORE_PY = "score.py"
RUNTIME_YAML = "runtime.yaml"
REQUIRED_FUNCTIONS = ("load_model", "predict")
ENV_FILES = ("requirements.txt", "conda.yaml", "environment.yaml")
ARTIFACT_VERSIONS = ("2.0", "3.0")
_PYTHON_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")

Function = ast.FunctionDef | ast.AsyncFunctionDef


def inspect_score_py(root: Path) -> dict[str, Any]:
    """The ``details`` of an OCI artifact, after checking its entry points."""
    functions = _top_level_functions(_parse(root / SCORE_PY))
    _check_load_model(functions["load_model"])
    _check_predict(functions["predict"])
    runtime_path = root / RUNTIME_YAML
    runtime = read_yaml_mapping(runtime_path) if runtime_path.is_file() else None
    return {
        "python_version": _inference_python_version(runtime) if runtime else None,
        "model_artifact_version": _artifact_version(runtime) if runtime else None,
        "has_runtime_yaml": runtime is not None,
        "env_files": files_present(root, ENV_FILES),
    }


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=SCORE_PY)
    except SyntaxError as exc:
        where = f"{SCORE_PY} line {exc.lineno}" if exc.lineno else SCORE_PY
        raise InvalidParameter(f"{where}: syntax error: {exc.msg}.") from exc
    except ValueError as exc:
        raise InvalidParameter(f"{SCORE_PY} cannot be parsed: {exc}.") from exc
    except OSError as exc:
        raise InvalidParameter(f"{SCORE_PY} cannot be read: {exc.strerror}.") from exc


def _top_level_functions(module: ast.Module) -> dict[str, ast.FunctionDef]:
    defined: dict[str, Function] = {
        node.name: node for node in module.body if isinstance(node, Function)
    }
    found: dict[str, ast.FunctionDef] = {}
    for name in REQUIRED_FUNCTIONS:
        node = defined.get(name)
        if isinstance(node, ast.AsyncFunctionDef):
            raise InvalidParameter(
                f"{SCORE_PY} line {node.lineno}: {name} is 'async def'; OCI calls "
                f"{' and '.join(REQUIRED_FUNCTIONS)} as plain functions."
            )
        if node is None:
            raise InvalidParameter(_missing_function(module, name))
        found[name] = node
    return found


def _missing_function(module: ast.Module, name: str) -> str:
    nested = next((n for n in ast.walk(module) if isinstance(n, Function) and n.name == name), None)
    if nested is not None:
        return (
            f"{SCORE_PY} line {nested.lineno}: {name} is defined inside another block; "
            "it must be a top-level function of the module."
        )
    return (
        f"{SCORE_PY} defines no top-level function {name}; an OCI artifact's {SCORE_PY} "
        "must define load_model() and predict(data, model=load_model())."
    )


def _check_load_model(node: ast.FunctionDef) -> None:
    if _required_positional(node.args) or _required_keyword_only(node.args):
        raise InvalidParameter(
            f"{SCORE_PY} line {node.lineno}: load_model is called with no arguments, "
            "so each of its parameters needs a default value."
        )


def _check_predict(node: ast.FunctionDef) -> None:
    args = node.args
    if not (args.posonlyargs or args.args or args.vararg):
        raise InvalidParameter(
            f"{SCORE_PY} line {node.lineno}: predict must take the request data as its "
            "first argument: def predict(data, model=load_model())."
        )
    if _required_keyword_only(args):
        raise InvalidParameter(
            f"{SCORE_PY} line {node.lineno}: predict has keyword-only parameters without "
            "defaults; OCI passes only the request data and the model."
        )


def _required_positional(args: ast.arguments) -> int:
    return len(args.posonlyargs) + len(args.args) - len(args.defaults)


def _required_keyword_only(args: ast.arguments) -> int:
    return sum(1 for default in args.kw_defaults if default is None)


def _artifact_version(runtime: dict[str, Any]) -> str:
    version = runtime.get("MODEL_ARTIFACT_VERSION")
    if version is None:
        raise InvalidParameter(
            f"{RUNTIME_YAML} has no MODEL_ARTIFACT_VERSION; add MODEL_ARTIFACT_VERSION: '3.0'."
        )
    if str(version) not in ARTIFACT_VERSIONS:
        raise InvalidParameter(
            f"{RUNTIME_YAML}: MODEL_ARTIFACT_VERSION is {version!r}; berth reads versions "
            f"{' and '.join(repr(v) for v in ARTIFACT_VERSIONS)}."
        )
    return str(version)


def _inference_python_version(runtime: dict[str, Any]) -> str | None:
    env = _section(
        _section(runtime, "MODEL_DEPLOYMENT", ""), "INFERENCE_CONDA_ENV", "MODEL_DEPLOYMENT."
    )
    version = env.get("INFERENCE_PYTHON_VERSION")
    if version is None:
        return None
    if isinstance(version, float):
        raise InvalidParameter(
            f"{RUNTIME_YAML}: INFERENCE_PYTHON_VERSION must be a quoted string such as '3.11'; "
            f"unquoted, YAML reads it as the number {version}."
        )
    if not isinstance(version, str) or not _PYTHON_VERSION.fullmatch(version):
        raise InvalidParameter(
            f"{RUNTIME_YAML}: INFERENCE_PYTHON_VERSION is {version!r}; write a Python version "
            "such as '3.11'."
        )
    return version


def _section(parent: dict[str, Any], key: str, prefix: str) -> dict[str, Any]:
    section = parent.get(key)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InvalidParameter(
            f"{RUNTIME_YAML}: {prefix}{key} must be a mapping of keys to values."
        )
    return section
