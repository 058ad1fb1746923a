"""Replicas started with ``--max-batch-size`` merge concurrent requests into one model call and
answer each exactly as they answer it alone; bad requests fail alone."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import berth
from tests.support.deploy import COLUMNS, FAKES, entity, register, unique, wait_ready
from tests.support.metrics import samples, value
from tests.support.net import wait_until
from tests.support.replicas import sandbox_home
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

BATCH_SUM = FAKES / "batch_sum"
SRC = Path(berth.__file__).resolve().parents[1]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    """Decoded JSON, or the text of a stream."""
    headers: dict[str, str]


def exchange(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> Reply:
    content = None if body is None else json.dumps(body)
    conn.request(method, path, body=content, headers={"content-type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    is_json = headers["content-type"] == "application/json"
    return Reply(response.status, json.loads(raw) if is_json else raw.decode(), headers)


@dataclass
class Replica:
    """A real ``python -m berth.runtime`` process, as the controller starts one."""

    proc: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls, python: Path | str, artifact: Path, fmt: str, *flags: str, tmp: Path) -> Replica:
        folder = Path(tempfile.mkdtemp(prefix="replica-", dir=tmp))
        port_file, log = folder / "port", folder / "log"
        # MLflow names a request's extra columns in set order: one hash seed for all replicas.
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": "0"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(python), "-m", "berth.runtime", "--artifact", str(artifact)]
                + ["--format", fmt, "--port-file", str(port_file), *flags],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the replica exited: {log.read_text()[-3000:]}")
            if not port_file.exists():
                return False
            try:
                return cls(proc, int(port_file.read_text())).get("/health").status == 200
            except OSError:
                return False

        wait_until(ready, timeout=120, what=f"a replica of {artifact} to load")
        return cls(proc, int(port_file.read_text()))

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.connect()
        return conn

    def get(self, path: str) -> Reply:
        conn = self.connect()
        try:
            return exchange(conn, "GET", path)
        finally:
            conn.close()

    def post(self, body: Any) -> Reply:
        conn = self.connect()
        try:
            return exchange(conn, "POST", "/invocations", body)
        finally:
            conn.close()

    def burst(self, bodies: list[Any]) -> list[Reply]:
        """All ``bodies`` at once, each on its own connection."""
        start = threading.Barrier(len(bodies))

        def send(body: Any) -> Reply:
            conn = self.connect()
            try:
                start.wait()
                return exchange(conn, "POST", "/invocations", body)
            finally:
                conn.close()

        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(send, bodies))

    def accepts(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.stop()


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory, trainer_python: Path) -> Path:
    root = tmp_path_factory.mktemp("sklearn")
    script = FAKES.parent / "make_sklearn_model.py"
    subprocess.run([trainer_python, str(script), str(root)], check=True, capture_output=True)
    return root / "model"


def record(row: list[float]) -> dict[str, float]:
    return dict(zip(COLUMNS, row, strict=True))


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8]]
GOOD = [
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:1]}},
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS[1:]}},
    {"dataframe_records": [record(ROWS[2])]},
    {"dataframe_records": [record(r) for r in ROWS]},
    {"instances": [record(ROWS[3])]},
    {"instances": [record(r) for r in ROWS[:3]]},
    {"inputs": {c: [ROWS[1][i]] for i, c in enumerate(COLUMNS)}},
    {"inputs": {c: [r[i] for r in ROWS[2:]] for i, c in enumerate(COLUMNS)}},
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS[2:]}, "params": {"unused": 1}},
]
MALFORMED = {"dataframe_split": {"columns": COLUMNS}}
WRONG_COLUMNS = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}
MIXED = [*GOOD, *GOOD, *GOOD, MALFORMED, WRONG_COLUMNS, *GOOD[:3]]


def test_an_mlflow_replica_merges_every_format_and_answers_each_as_alone(
    sklearn_model: Path, trainer_python: Path, replicas: list[Replica], tmp_path: Path
) -> None:
    assert len(MIXED) == 32
    alone = Replica.start(trainer_python, sklearn_model, "mlflow", tmp=tmp_path)
    replicas.append(alone)
    expected = [alone.post(body) for body in MIXED]
    assert [r.status for r in expected].count(400) == 2
    assert all("x-berth-batch-ms" not in r.headers for r in expected)  # batching is off
    flags = ["--max-batch-size", "16", "--max-batch-wait-ms", "20", "--max-concurrency", "32"]
    batching = Replica.start(trainer_python, sklearn_model, "mlflow", *flags, tmp=tmp_path)
    replicas.append(batching)

    sizes: list[int] = []
    for _ in range(5):  # merging needs requests to overlap, which a busy machine may not give
        answers = batching.burst(MIXED)
        for body, got, want in zip(MIXED, answers, expected, strict=True):
            assert (got.status, got.body) == (want.status, want.body), body
            assert float(got.headers["x-berth-batch-ms"]) >= 0
        sizes += [int(r.headers["x-berth-batch-size"]) for r in answers if r.status == 200]
        if max(sizes) > 1:
            break
    assert max(sizes) > 1, "no two requests ever shared a model call"
    assert max(sizes) <= 16

    figures = batching.get("/metrics").body
    assert figures["predict_seconds"]["count"] >= len(sizes)
    merged_calls = figures["batch_size"]["count"] - figures["batch_size"]["counts"][0]
    assert merged_calls > 0


def test_a_score_py_with_predict_batch_batches_and_a_bad_body_fails_alone(
    replicas: list[Replica], tmp_path: Path
) -> None:
    flags = ["--max-batch-size", "8", "--max-batch-wait-ms", "5000", "--max-concurrency", "16"]
    replica = Replica.start(sys.executable, BATCH_SUM, "score_py", *flags, tmp=tmp_path)
    replicas.append(replica)
    bodies = [{"inputs": [[n, 1], [n, 2]][: 1 + n % 2]} for n in range(8)]

    lone = replica.post(bodies[0])
    assert lone.body == {"predictions": [1]}
    assert lone.headers["x-berth-batch-size"] == "1"
    assert float(lone.headers["x-berth-batch-ms"]) < 2500  # did not sit out the 5 s wait
    expected = [replica.post(body).body for body in bodies]

    with holding(replica, tmp_path / "gate"):
        # The model is busy: these gather until eight are there, then share one call.
        merged = replica.burst(bodies)
        assert [r.body for r in merged] == expected
        assert {r.headers["x-berth-batch-size"] for r in merged} == {"8"}
        assert replica.get("/health").status == 200

        bad = [*bodies[:7], {"inputs": [[1, "two"]]}]
        answers = replica.burst(bad)
        assert [r.body for r in answers[:7]] == expected[:7]
        assert answers[7].status == 400
        assert "TypeError" in answers[7].body["message"]

    stream = replica.post({**bodies[1], "stream": True})
    assert stream.body == 'data: {"sum": 2}\n\ndata: {"sum": 3}\n\ndata: [DONE]\n\n'
    assert "x-berth-batch-ms" not in stream.headers


def test_sigterm_waits_for_a_batched_request_in_flight(
    replicas: list[Replica], tmp_path: Path
) -> None:
    flags = ["--max-batch-size", "4", "--max-batch-wait-ms", "50"]
    replica = Replica.start(sys.executable, BATCH_SUM, "score_py", *flags, tmp=tmp_path)
    replicas.append(replica)
    gate = tmp_path / "gate"
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(replica.post, {"hold": str(gate)})
        wait_until(gate.with_suffix(".held").exists, timeout=30, what="the model to be busy")
        replica.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not replica.accepts(), timeout=30, what="the replica to stop accepting")
        gate.touch()
        answer = held.result(timeout=30)
    assert (answer.status, answer.body) == (200, {"held": True})
    assert answer.headers["x-berth-batch-size"] == "1"
    assert replica.proc.wait(timeout=30) == 0


@contextlib.contextmanager
def holding(replica: Replica, gate: Path) -> Iterator[None]:
    """Keeps one of ``replica``'s model threads busy with a held request for the block."""
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(replica.post, {"hold": str(gate)})
        wait_until(gate.with_suffix(".held").exists, timeout=30, what="the model to be busy")
        try:
            yield
        finally:
            gate.touch()
        assert held.result(timeout=30).body == {"held": True}


def test_an_endpoint_with_batching_fields_merges_requests_through_the_gateway(
    api: httpx.Client, server: BerthServer
) -> None:
    """``max_batch_size``/``max_batch_wait_ms`` reach the replica; requests that arrive while
    the model is busy share one call; the gateway times the ``batching`` stage and the
    server's metrics carry the replica's batch sizes."""
    name = unique("batch")
    register(api, name, BATCH_SUM)
    fields = {"max_batch_size": 8, "max_batch_wait_ms": 1000}
    config = {"served_entities": [entity(name, "1", **fields)]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    served = wait_ready(api, name)["config"]["served_entities"][0]
    assert (served["max_batch_size"], served["max_batch_wait_ms"]) == (8, 1000)

    url = f"/serving-endpoints/{name}/invocations"
    release = sandbox_home(server.home, name) / "release"  # the sandboxed model can see it
    with ThreadPoolExecutor(9) as pool:
        # While one request keeps the model busy, the next ones gather into a batch.
        held = pool.submit(api.post, url, json={"hold": str(release)})
        wait_until(lambda: Path(f"{release}.held").exists(), timeout=30, what="the model busy")
        answers = [pool.submit(api.post, url, json={"inputs": [[i, 1], [i, 2]]}) for i in range(8)]
        for i, answer in enumerate(answers):
            assert answer.result().status_code == 200, answer.result().text
            assert answer.result().json() == {"predictions": [i + 1, i + 2]}
        release.touch()
        assert held.result().json() == {"held": True}

    found = samples(api.get(f"/api/2.0/serving-endpoints/{name}/metrics").text)
    labels = {"endpoint": name, "served_entity": f"{name}-1"}
    calls = value(found, "berth_model_batch_size_count", **labels)
    assert value(found, "berth_model_batch_size_sum", **labels) == 9, "every request scored"
    assert calls < 9, f"9 requests took {calls} model calls: some must have shared one"
    stage = value(found, "berth_request_stage_seconds_count", endpoint=name, stage="batching")
    assert stage == 9
