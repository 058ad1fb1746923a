"""What a person reads from `berth endpoints list`, `get` and `events` in table form."""

from __future__ import annotations

import re
from typing import Any

import pytest

from berth.cli.endpoint_tables import render_endpoint, render_events, render_history, render_list

T0 = 1_700_000_000_000
LONG_NAME = "an-endpoint-name-long-enough-to-be-cut-in-a-narrow-column-0123456789"

REGISTRY_ENTITY: dict[str, Any] = {
    "name": "churn-3",
    "entity_name": "churn",
    "entity_version": "3",
    "workload_size": "Small",
    "workload_type": "CPU",
    "scale_to_zero_enabled": False,
    "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""},
}
EXTERNAL_ENTITY: dict[str, Any] = {
    "name": "chat",
    "external_model": {"provider": "openai", "name": "gpt-4o", "task": "llm/v1/chat"},
    "state": {"deployment": "DEPLOYMENT_FAILED", "deployment_state_message": "bad [key] given"},
}


def _endpoint(**fields: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "name": LONG_NAME,
        "id": "88fd3f75a0d24b0380ddc40484d7a31b",
        "creator": "alice@example.com",
        "creation_timestamp": T0,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "config": {
            "config_version": 1,
            "served_entities": [REGISTRY_ENTITY],
            "traffic_config": {
                "routes": [{"served_entity_name": "churn-3", "traffic_percentage": 100}]
            },
        },
        "tags": [{"key": "team", "value": "ml"}],
    }
    endpoint.update(fields)
    return endpoint


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def _row_with(out: str, needle: str) -> str:
    return next(line for line in _lines(out) if needle in line)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split("[│┃]", row) if cell.strip()]


def test_list_row_shows_state_entities_traffic_and_creator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    updating = _endpoint(state={"ready": "NOT_READY", "config_update": "IN_PROGRESS"})
    render_list([updating, _endpoint(name="settled")])
    out = capsys.readouterr().out
    assert _cells(_row_with(out, LONG_NAME)) == [
        LONG_NAME,
        "NOT_READY (IN_PROGRESS)",
        "churn-3 (churn v3, Small)",
        "churn-3 100%",
        "alice@example.com",
        "2023-11-14 22:13:20",
    ]
    assert _cells(_row_with(out, "settled"))[:2] == ["settled", "READY"]
    assert "NOT_UPDATING" not in out


def test_list_names_external_models_by_provider_and_uses_pending_config_of_new_endpoints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh = _endpoint(
        config=None,
        pending_config={"config_version": 1, "served_entities": [EXTERNAL_ENTITY]},
    )
    render_list([fresh])
    assert "chat (openai gpt-4o)" in _row_with(capsys.readouterr().out, LONG_NAME)


def test_get_shows_header_then_entities_and_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    render_endpoint(_endpoint())
    out = capsys.readouterr().out
    assert _row_with(out, "Name").split() == ["Name", LONG_NAME]
    assert _row_with(out, "State").split() == ["State", "READY"]
    assert _row_with(out, "Config version").split() == ["Config", "version", "1"]
    assert _row_with(out, "Tags").split() == ["Tags", "team=ml"]
    assert "Pending version" not in out
    assert _cells(_row_with(out, "Small CPU")) == [
        "churn-3",
        "churn",
        "3",
        "Small CPU",
        "no",
        "READY",
    ]
    assert "Traffic (config v1)" in out
    assert _cells(_row_with(out, "100%")) == ["churn-3", "100%"]


def test_get_shows_pending_config_beside_live_one(capsys: pytest.CaptureFixture[str]) -> None:
    pending = {
        "config_version": 2,
        "served_entities": [REGISTRY_ENTITY, EXTERNAL_ENTITY],
        "traffic_config": {
            "routes": [
                {"served_entity_name": "churn-3", "traffic_percentage": 90},
                {"served_entity_name": "chat", "traffic_percentage": 10},
            ]
        },
    }
    render_endpoint(
        _endpoint(pending_config=pending, state={"ready": "READY", "config_update": "IN_PROGRESS"})
    )
    out = capsys.readouterr().out
    assert _row_with(out, "Pending version").split() == ["Pending", "version", "2"]
    assert _row_with(out, "State").split() == ["State", "READY", "(IN_PROGRESS)"]
    assert "Served entities (pending config v2)" in out
    assert _cells(_row_with(out, "gpt-4o")) == [
        "chat",
        "openai gpt-4o",
        "external",
        "FAILED",
        "bad [key] given",
    ]
    assert "10%" in out


def test_events_table_is_time_type_message(capsys: pytest.CaptureFixture[str]) -> None:
    render_events(
        "ep",
        [
            {
                "timestamp": T0,
                "type": "CONFIG_UPDATE",
                "message": "[red]v2[/red]",
                "config_version": 2,
            }
        ],
    )
    out = capsys.readouterr().out
    assert _cells(_row_with(out, "time")) == ["time", "type", "message"]
    assert _cells(_row_with(out, "CONFIG_UPDATE")) == [
        "2023-11-14 22:13:20",
        "CONFIG_UPDATE",
        "[red]v2[/red]",
    ]


def test_get_shows_an_open_llms_band_now_its_bounds_and_the_measured_chunk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm = {
        "name": "smol-1",
        "entity_name": "smol",
        "entity_version": "1",
        "min_provisioned_throughput": 95,
        "max_provisioned_throughput": 285,
        "workload_type": "CPU",
        "current_replicas": 2,
        "desired_replicas": 2,
        "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""},
        "provisioned_throughput": {
            "chunk_size": 95,
            "min_throughput": 95,
            "max_throughput": 285,
            "current_band": 190,
            "calibrated_at": T0,
            "fingerprint": "AMD EPYC, 2 logical CPUs; xllamacpp==1",
        },
    }
    units = {**llm, "name": "units", "provisioned_model_units": 1}
    del units["min_provisioned_throughput"], units["max_provisioned_throughput"]
    config = {"config_version": 1, "served_entities": [llm, units]}
    render_endpoint(_endpoint(config=config))
    out = capsys.readouterr().out
    assert _cells(_row_with(out, "throughput 95-285"))[3] == "throughput 95-285 tokens/s CPU"
    assert _cells(_row_with(out, "model unit"))[3] == "1 model unit CPU"
    assert "Provisioned throughput (config v1)" in out
    assert _cells(_row_with(out, "per replica")) == [
        "smol-1",
        "190 tokens/s",
        "95-285 tokens/s",
        "95 tokens/s per replica",
        "2023-11-14 22:13:20",
        "AMD EPYC, 2 logical CPUs; xllamacpp==1",
    ]


def test_get_shows_no_throughput_table_for_entities_sized_in_concurrency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render_endpoint(_endpoint())
    assert "Provisioned throughput" not in capsys.readouterr().out


def test_metrics_shows_a_row_a_minute_with_dashes_where_nothing_was_measured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    series = {
        "requests_per_s": [0.0, 12.5],
        "errors_per_s": [0.0, 0.25],
        "p50_ms": [None, 4.375],
        "p99_ms": [None, 1234.5],
        "input_tokens_per_s": [0.0, 30.0],
        "output_tokens_per_s": [0.0, 90.0],
        "replicas_current": [None, 2],
        "replicas_desired": [None, 3],
    }
    history = {"minutes": [T0 - 60_000, T0], "series": {"a": series}, "total": series}
    render_history("chat", history, "a")
    out = capsys.readouterr().out
    assert "chat: a, per minute" in out
    first, second = (line for line in out.splitlines() if re.search(r"\d\d:\d\d ", line))
    assert re.findall(r"[\w./-]+", first)[2:] == ["0", "0", "-", "-", "0/0", "-"]
    assert re.findall(r"[\w./-]+", second)[2:] == ["12.5", "0.25", "4.38", "1234", "30/90", "2/3"]
