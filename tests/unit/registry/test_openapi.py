"""An endpoint's OpenAPI document, from a model's signature, its input example, or its task."""

from __future__ import annotations

import json
from pathlib import Path

from berth.registry import openapi

MLMODEL = """
flavors:
  python_function: {loader_module: mlflow.sklearn}
signature:
  inputs: '[{"type": "long", "name": "n", "required": true},
            {"type": "string", "name": "s", "required": false}]'
"""


def test_signature_columns_type_all_four_formats_and_the_example_is_kept(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(MLMODEL)
    example = {"dataframe_split": {"columns": ["n", "s"], "data": [[1, "x"]]}}
    (tmp_path / "serving_input_example.json").write_text(json.dumps(example))
    schema, found = openapi.model_input(tmp_path, "mlflow")
    assert found == example
    records = next(f for f in schema["oneOf"] if f["required"] == ["dataframe_records"])
    row = records["properties"]["dataframe_records"]["items"]
    assert row["properties"]["n"] == {"type": "integer", "format": "int64"}
    assert row["required"] == ["n"]
    doc = openapi.document("ep", 3, [("ep-1", schema, found)])
    media = doc["paths"]["/serving-endpoints/ep/invocations"]["post"]["requestBody"]["content"]
    assert media["application/json"]["examples"] == {"ep-1": {"value": example}}
    assert doc["info"]["version"] == "3"


def test_without_a_signature_any_json_is_taken(tmp_path: Path) -> None:
    assert openapi.model_input(tmp_path, "score_py") == (openapi.ANY_JSON, None)
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: m}}\n")
    schema, example = openapi.model_input(tmp_path, "mlflow")
    assert "dataframe_split" in schema["description"] and example is None


def test_two_entities_that_take_different_bodies_are_one_of_them() -> None:
    chat, embed = openapi.task_input("llm/v1/chat"), openapi.task_input("llm/v1/embeddings")
    doc = openapi.document("mix", 1, [("a", chat, None), ("b", embed, None)])
    schema = doc["paths"]["/serving-endpoints/mix/invocations"]["post"]["requestBody"]
    assert schema["content"]["application/json"]["schema"] == {"oneOf": [chat, embed]}
