"""An endpoint's OpenAPI 3 document: what its invocations route takes, from what is known of
the model — the MLflow signature and input example, the LLM task — or, failing both, any JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from berth.registry.documents import read_yaml_mapping
from berth.registry.mlmodel import MLMODEL

Json = dict[str, Any]

_COLUMN_TYPES: dict[str, Json] = {
    "double": {"type": "number"},
    "float": {"type": "number"},
    "long": {"type": "integer", "format": "int64"},
    "integer": {"type": "integer", "format": "int32"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte"},
    "datetime": {"type": "string", "format": "date-time"},
}
_TASK_BODIES: dict[str, Json] = {
    "llm/v1/chat": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
                },
            },
            "max_tokens": {"type": "integer"},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean"},
        },
    },
    "llm/v1/completions": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "max_tokens": {"type": "integer"},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean"},
        },
    },
    "llm/v1/embeddings": {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        },
    },
}
ANY_JSON: Json = {"description": "Any JSON value: the model defines what it takes."}


def model_input(artifact: Path, model_format: str) -> tuple[Json, Any]:
    """(the request body schema, an example or None) of one registered model version."""
    if model_format != "mlflow":
        return ANY_JSON, None
    try:
        document = read_yaml_mapping(artifact / MLMODEL)
    except Exception:  # an unreadable MLmodel only means less is known
        return ANY_JSON, None
    return _signature_body(document.get("signature")), _example(artifact, document)


def task_input(task: str) -> Json:
    return _TASK_BODIES.get(task, ANY_JSON)


def document(endpoint: str, version: int, bodies: Sequence[tuple[str, Json, Any]]) -> Json:
    """The OpenAPI 3.0 document of ``endpoint``: its invocations route, with one request body
    schema per served entity (``(served entity, schema, example)``)."""
    schemas = [schema for _, schema, _ in bodies]
    body_schema: Json = schemas[0] if len(set(map(_key, schemas))) == 1 else {"oneOf": schemas}
    media: Json = {"schema": body_schema}
    examples = {name: {"value": example} for name, _, example in bodies if example is not None}
    if examples:
        media["examples"] = examples
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{endpoint} serving endpoint", "version": str(version)},
        "paths": {
            f"/serving-endpoints/{endpoint}/invocations": {
                "post": {
                    "summary": f"Query {endpoint}",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {"application/json": media}},
                    "responses": {
                        "200": {
                            "description": "The model's answer.",
                            "content": {"application/json": {"schema": ANY_JSON}},
                        },
                        "4XX": {"description": "{error_code, message}: what to fix."},
                    },
                }
            }
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _signature_body(signature: Any) -> Json:
    """MLflow's four scoring formats, typed by the signature's columns when it has them."""
    columns = _columns(signature)
    if columns is None:
        return {
            "type": "object",
            "description": "One of dataframe_split, dataframe_records, instances, inputs.",
        }
    row = {
        "type": "object",
        "properties": {name: kind for name, kind, _ in columns},
        "required": [name for name, _, required in columns if required],
    }
    names = [name for name, _, _ in columns]
    return {
        "oneOf": [
            _wrapped(
                "dataframe_split",
                {
                    "type": "object",
                    "required": ["columns", "data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"enum": names}},
                        "data": {"type": "array", "items": {"type": "array"}},
                    },
                },
            ),
            _wrapped("dataframe_records", {"type": "array", "items": row}),
            _wrapped("instances", {"type": "array", "items": row}),
            _wrapped(
                "inputs",
                {
                    "type": "object",
                    "properties": {
                        name: {"type": "array", "items": kind} for name, kind, _ in columns
                    },
                },
            ),
        ]
    }


def _wrapped(key: str, schema: Json) -> Json:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: schema, "params": {"type": "object"}},
    }


def _columns(signature: Any) -> list[tuple[str, Json, bool]] | None:
    """(name, schema, required) of a column-based signature's inputs; None otherwise."""
    if not isinstance(signature, Mapping) or not isinstance(signature.get("inputs"), str):
        return None
    try:
        specs = json.loads(signature["inputs"])
    except ValueError:
        return None
    if not isinstance(specs, list) or not all(isinstance(s, dict) and "name" in s for s in specs):
        return None
    return [
        (str(s["name"]), _COLUMN_TYPES.get(str(s.get("type")), {}), bool(s.get("required", True)))
        for s in specs
    ]


def _example(artifact: Path, document: Mapping[str, Any]) -> Any:
    """The request MLflow saved with the model (``serving_input_example.json``, else the
    input example in split orientation), or None."""
    for name in ("serving_input_example.json", "input_example.json"):
        path = artifact / name
        if path.is_file():
            try:
                example = json.loads(path.read_text())
            except ValueError:
                return None
            if name == "input_example.json" and isinstance(example, dict):
                return {"dataframe_split": example}
            return example
    return None


def _key(schema: Json) -> str:
    return json.dumps(schema, sort_keys=True)
