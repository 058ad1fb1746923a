"""How a replica starts vLLM: on its private socket, with its slots and its GPUs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from berth.runtime.engine import metric_total
from berth.runtime.vllm_engine import IN_FLIGHT_METRICS, visible_gpus, vllm_argv


def test_vllm_serves_the_folder_on_the_loading_socket_over_the_replicas_gpus() -> None:
    argv = vllm_argv(Path("/artifacts/llama/3"), "/box/r.sock.loading", 4, 2)
    assert argv[:5] == [
        sys.executable,
        "-m",
        "vllm.entrypoints.cli.main",
        "serve",
        "/artifacts/llama/3",
    ]
    flags = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert flags["--uds"] == "/box/r.sock.loading"
    assert flags["--max-num-seqs"] == "4"
    assert flags["--tensor-parallel-size"] == "2"
    assert flags["--served-model-name"] == "3"


@pytest.mark.parametrize(("visible", "count"), [("0", 1), ("2,3", 2), ("", 1), (" 1 , 4 ", 2)])
def test_the_gpus_berth_gave_the_replica_are_counted(
    monkeypatch: pytest.MonkeyPatch, visible: str, count: int
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert visible_gpus() == count


def test_the_requests_an_engine_holds_are_summed_from_its_metrics_with_or_without_labels() -> None:
    text = "\n".join(
        (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            'vllm:num_requests_running{model_name="3"} 2.0',
            'vllm:num_requests_waiting{model_name="3"} 1.0',
            "vllm:num_requests_swapped 7.0",
            "llamacpp:requests_processing 3",
        )
    )
    assert metric_total(text, IN_FLIGHT_METRICS) == 3
    assert metric_total(text, ("llamacpp:requests_processing",)) == 3
    assert metric_total("", IN_FLIGHT_METRICS) == 0
