"""An open LLM's replica: llama.cpp's own server, through the ``xllamacpp`` package, in this
process and on the replica's Unix socket.

llama.cpp batches continuously across its slots (one per request it decodes at once) and
answers the OpenAI routes itself (``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``/health``, ``/metrics``), so the gateway talks to it directly and no
Python sits between a token and the caller. Its server listens on a temporary name first;
the replica's socket appears (a rename) only once the weights are loaded and one token has
been generated, so "the socket answers" means "ready", as for every other replica.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

log = logging.getLogger("berth.runtime.engine")

GGUF_SUFFIX = ".gguf"
CONTEXT_PER_SLOT = 4096
"""Tokens of context each slot holds (prompt and answer together)."""


class EngineFailed(RuntimeError):
    """The engine could not load the weights or generate its first token."""


def weights_file(artifact: Path) -> Path:
    """The one GGUF file of a model version's artifact."""
    found = sorted(p for p in artifact.iterdir() if p.suffix == GGUF_SUFFIX)
    if len(found) != 1:
        raise EngineFailed(f"expected one {GGUF_SUFFIX} file in {artifact}, found {len(found)}")
    return found[0]


def engine_params(
    weights: Path, listen: str, slots: int, threads: int, embeddings: bool = False
) -> Any:
    """llama.cpp's settings for one replica: ``slots`` requests decoded together, each with
    ``CONTEXT_PER_SLOT`` tokens of context, on ``threads`` CPU threads. An embedding model
    pools its hidden states as its header says (``<architecture>.pooling_type``)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(weights)
    params.model_alias = {weights.stem}
    params.hostnames = [listen]
    params.n_parallel = slots
    params.n_ctx = slots * CONTEXT_PER_SLOT
    params.cont_batching = True
    params.embedding = embeddings
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = threads
        # No busy-waiting between steps: a replica shares its cores with the gateway and
        # with other replicas (a version swap, a scale-up), and spinning threads starve
        # them all. Measured here with two processes competing: 10 tokens/s polling, 113 not.
        cpu.poll = 0
    params.endpoint_metrics = True
    params.endpoint_slots = False
    return params


def engine_threads(cpus: int) -> int:
    """All CPUs but one, which is left to the gateway and the HTTP threads. The threads of a
    step wait for each other, so one that is not scheduled stalls them all: with two cores and
    other work running, two threads made 5 to 16 tokens/s and one thread 29 to 50 (SmolLM2,
    four streams, measured here)."""
    return max(1, cpus - 1)


def first_answer(server: Any, embeddings: bool) -> dict[str, Any]:
    """Generate one token (or embed one word), so readiness means the engine computes, not
    only that it loaded."""
    if embeddings:
        answer = server.handle_embeddings({"input": "Hello"})
    else:
        answer = server.handle_completions({"prompt": "Hello", "max_tokens": 1})
    if not isinstance(answer, dict) or "error" in answer:
        what = "embed a word" if embeddings else "generate a token"
        raise EngineFailed(f"the engine loaded but could not {what}: {answer}")
    return answer


LLAMA_IN_FLIGHT = ("llamacpp:requests_processing", "llamacpp:requests_deferred")


def metric_total(text: str, names: Collection[str]) -> int:
    """The samples of the metrics ``names`` added up, from Prometheus text (with labels or
    without): what an engine says it is decoding or holding."""
    total = 0.0
    for line in text.splitlines():
        if line.split("{", 1)[0].split(" ", 1)[0] in names:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def in_flight(server: Any) -> int:
    """Requests llama.cpp is decoding or holding for a free slot, from its own metrics."""
    return metric_total(server.handle_metrics(), LLAMA_IN_FLIGHT)


def drain(busy: Callable[[], int], seconds: float) -> bool:
    """Wait until an engine has finished every request it took (``busy`` counts them), at
    most ``seconds``.

    An engine's own shutdown (llama.cpp's, vLLM's) stops decoding at once and then waits for
    its connections to close, so a stream still in flight would hang, sending nothing, until
    its client gave up.
    """
    deadline = time.monotonic() + seconds
    while busy():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def serve(
    artifact: Path,
    socket_path: str,
    slots: int,
    drain_seconds: float,
    threads: int | None = None,
    embeddings: bool = False,
) -> int:
    """Serve the artifact's GGUF weights on ``socket_path`` until SIGTERM or SIGINT, then
    answer what is in flight (at most ``drain_seconds``) and stop."""
    # Blocked before llama.cpp starts its threads, which inherit the mask: the stop signal
    # then reaches only the sigwait below.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    import xllamacpp

    weights = weights_file(artifact)
    threads = threads or engine_threads(len(os.sched_getaffinity(0)))
    loading = f"{socket_path}.loading.sock"  # llama.cpp takes a name ending .sock as a Unix socket
    started = time.monotonic()
    log.info(
        "loading %s%s: %d slots, %d threads",
        weights.name,
        " for embeddings" if embeddings else "",
        slots,
        threads,
    )
    server = xllamacpp.Server(engine_params(weights, loading, slots, threads, embeddings))
    answer = first_answer(server, embeddings)
    os.replace(loading, socket_path)
    log.info(
        "ready in %.2f s (first answer after %s ms of prompt)",
        time.monotonic() - started,
        answer.get("timings", {}).get("prompt_ms"),
    )
    signal.sigwait(stop)
    os.unlink(socket_path)  # no new connection; the open ones are still answered
    if not drain(functools.partial(in_flight, server), drain_seconds):
        log.warning("stopping with %d request(s) still in flight", in_flight(server))
    log.info("stopping")
    del server  # llama.cpp's destructor ends its loop, then waits for its connections
    return 0
