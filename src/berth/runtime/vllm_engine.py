"""An open LLM's replica on the GPU path when vLLM is installed in the model's environment:
vLLM's own OpenAI server, as a child process, on the replica's Unix socket.

As with llama.cpp, the server listens on a temporary name first, and the replica's socket
appears (a rename) once the weights are loaded and one token has been generated. On SIGTERM
the socket goes, what vLLM holds is answered (watched through its metrics), then vLLM stops.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from berth.runtime.engine import drain, metric_total

log = logging.getLogger("berth.runtime.vllm_engine")

PR_SET_PDEATHSIG = 1
IN_FLIGHT_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting")


class EngineFailed(RuntimeError):
    """vLLM exited or could not generate its first token."""


def vllm_argv(artifact: Path, listen: str, slots: int, gpus: int) -> list[str]:
    """``vllm serve`` for one replica: ``slots`` sequences decoded together, the weights split
    over the replica's ``gpus``."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.cli.main",
        "serve",
        str(artifact),
        "--served-model-name",
        artifact.name,
        "--uds",
        listen,
        "--max-num-seqs",
        str(slots),
        "--tensor-parallel-size",
        str(gpus),
        "--disable-uvicorn-access-log",
    ]


def visible_gpus() -> int:
    """The GPUs berth gave this replica (``CUDA_VISIBLE_DEVICES``), at least one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return max(1, len([part for part in visible.split(",") if part.strip()]))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("engine", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def call(
    path: str, method: str, route: str, body: dict[str, object] | None = None
) -> tuple[int, bytes]:
    """One request to the server on the Unix socket ``path``."""
    connection = _UnixConnection(path, timeout=60.0)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        connection.request(method, route, body=data, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def in_flight(path: str) -> int:
    """Requests vLLM is decoding or holding, from its Prometheus metrics."""
    status, text = call(path, "GET", "/metrics")
    return metric_total(text.decode(errors="replace"), IN_FLIGHT_METRICS) if status == 200 else 0


def _die_with_parent() -> None:
    """In the child: a replica killed outright takes vLLM with it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _until_answering(child: subprocess.Popen[bytes], listen: str, name: str) -> None:
    while True:
        if child.poll() is not None:
            raise EngineFailed(f"vLLM exited with code {child.returncode} while loading")
        if os.path.exists(listen):
            try:
                status, _ = call(listen, "GET", "/health")
            except OSError:
                status = 0
            if status == 200:
                break
        time.sleep(0.5)
    status, answer = call(
        listen, "POST", "/v1/completions", {"model": name, "prompt": "Hello", "max_tokens": 1}
    )
    if status != 200:
        raise EngineFailed(f"vLLM loaded but could not generate a token: {answer[:500]!r}")


def serve(artifact: Path, socket_path: str, slots: int, drain_seconds: float) -> int:
    """Serve the artifact's weights with vLLM on ``socket_path`` until SIGTERM or SIGINT,
    then answer what is in flight (at most ``drain_seconds``) and stop."""
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    listen = f"{socket_path}.loading"
    started = time.monotonic()
    argv = vllm_argv(artifact, listen, slots, visible_gpus())
    log.info("starting vLLM: %s", " ".join(argv[2:]))
    # Its own session: the replica's stop signal is the replica's to handle (drain first),
    # not vLLM's; vLLM dies with the replica all the same.
    child = subprocess.Popen(argv, preexec_fn=_die_with_parent, start_new_session=True)
    try:
        _until_answering(child, listen, artifact.name)
        os.replace(listen, socket_path)
        log.info("ready in %.2f s", time.monotonic() - started)
        signal.sigwait(stop)
        # Back to the private name: no new connection from the gateway, and the metrics
        # still answer on it.
        os.replace(socket_path, listen)
        drain(lambda: in_flight(listen), drain_seconds)
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0
