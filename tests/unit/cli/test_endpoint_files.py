"""Reading endpoint specs from files, and the argument errors caught before any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from berth.cli.endpoints import config_of
from berth.cli.files import load_spec
from berth.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "endpoints" / "iris.yaml"

runner = CliRunner()


def _create(path: Path) -> tuple[int, str]:
    # No server runs here: each case must fail before the CLI makes a request.
    result = runner.invoke(app, ["endpoints", "create", "-f", str(path)])
    return result.exit_code, result.stderr


def test_json_and_yaml_files_give_the_same_spec(tmp_path: Path) -> None:
    as_json = tmp_path / "spec.json"
    as_json.write_text('{"name": "a", "config": {"served_entities": [{"entity_version": "1"}]}}')
    as_yaml = tmp_path / "spec.yaml"
    as_yaml.write_text("name: a\nconfig:\n  served_entities:\n    - entity_version: '1'\n")
    assert load_spec(as_json) == load_spec(as_yaml)


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        ("bad.yaml", "name: [x\n", "(line 2, column 1): expected ',' or ']'"),
        ("bad.json", '{"name": "a",}', "(line 1, column 14): Expecting property name"),
        ("list.yaml", "- name: a\n", "must hold a mapping (JSON object), not list"),
        ("empty.yaml", "", "must hold a mapping (JSON object), not NoneType"),
        ("date.yaml", "name: a\ncreated: 2024-01-01\n", "holds a value JSON cannot carry"),
    ],
)
def test_unparsable_files_exit_2_naming_file_and_problem(
    tmp_path: Path, file_name: str, text: str, expected: str
) -> None:
    path = tmp_path / file_name
    path.write_text(text)
    code, stderr = _create(path)
    assert code == 2
    assert str(path) in stderr
    assert expected in stderr


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    code, stderr = _create(tmp_path / "nope.yaml")
    assert code == 2
    assert f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory" in stderr


def test_update_config_takes_config_of_a_create_payload() -> None:
    core = {"served_entities": [{"entity_name": "m"}], "traffic_config": {"routes": []}}
    assert config_of({"name": "ep", "config": core, "tags": []}) == core
    assert config_of(core) == core


def test_example_spec_is_a_create_payload_with_string_versions() -> None:
    spec = load_spec(EXAMPLE)
    assert spec["name"] == "iris"
    (entity,) = spec["config"]["served_entities"]
    assert entity["entity_name"] == "iris"
    assert entity["entity_version"] == "1"
    assert entity["scale_to_zero_enabled"] is False
    assert entity["workload_size"] == "Small"


def test_tag_without_equals_sign_is_a_usage_error() -> None:
    result = runner.invoke(app, ["endpoints", "tags", "ep", "--add", "team"])
    assert result.exit_code == 2
    assert "'team' is not KEY=VALUE" in result.stderr


def test_delete_without_yes_asks_and_stops_on_no() -> None:
    result = runner.invoke(app, ["endpoints", "delete", "ep"], input="n\n")
    assert result.exit_code == 1
    assert "Delete endpoint ep?" in result.output
    assert "Deleted" not in result.output
