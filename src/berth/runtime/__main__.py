"""``python -m berth.runtime``: serve one model artifact until SIGTERM.

Honours the Vertex AI container contract: ``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE`` and
``AIP_PREDICT_ROUTE`` override the flags.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import signal
import sys
from pathlib import Path

from berth.runtime.app import Phase, ReplicaApp
from berth.runtime.http import start_server, start_unix_server
from berth.runtime.models import load

log = logging.getLogger("berth.runtime")
EMBEDDINGS_TASK = "llm/v1/embeddings"


RELAYED_FORMATS = ("gguf", "huggingface", "container")
"""Served on a Unix socket (an engine, a custom container's relay); on TCP, through
`berth.runtime.relay`."""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth.runtime", description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True, help="model artifact folder")
    parser.add_argument(
        "--format",
        required=True,
        choices=["score_py", "mlflow", "gguf", "huggingface", "container"],
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port")
    parser.add_argument("--socket", help="listen on this Unix socket instead of a TCP port")
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--warmup-json", help="a request body scored once before ready")
    parser.add_argument("--task", help="an open LLM's task; llm/v1/embeddings embeds")
    parser.add_argument(
        "--container-json", help="a custom container's spec and deployment (format container)"
    )
    parser.add_argument(
        "--image-json",
        help="how to run a container's image: the podman command line and the names of the "
        "variables the container gets from this environment (format container)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=1,
        help="requests merged into one model call at most; 1 scores each alone",
    )
    parser.add_argument(
        "--max-batch-wait-ms",
        type=float,
        default=5.0,
        help="how long a batch waits for more requests after its first, while the model is busy",
    )
    args = parser.parse_args(argv)
    if args.max_batch_size < 1:
        parser.error("--max-batch-size must be 1 or more")
    if args.max_batch_wait_ms < 0:
        parser.error("--max-batch-wait-ms must not be negative")
    if (args.format == "container") != (args.container_json is not None):
        parser.error("--container-json goes with --format container, and only there")
    if args.image_json is not None and args.container_json is None:
        parser.error("--image-json goes with --container-json")
    if args.format in RELAYED_FORMATS and not args.socket and not args.port_file:
        parser.error(f"--format {args.format} on TCP tells its port in --port-file: give one")
    return args


async def _serve(args: argparse.Namespace) -> int:
    port = int(os.environ.get("AIP_HTTP_PORT", args.port))
    predict_routes = ("/invocations", "/predict", os.environ.get("AIP_PREDICT_ROUTE", "/predict"))
    app = ReplicaApp(
        lambda: load(args.artifact, args.format),
        max_concurrency=args.max_concurrency,
        health_route=os.environ.get("AIP_HEALTH_ROUTE", "/health"),
        predict_routes=predict_routes,
        warmup=json.loads(args.warmup_json) if args.warmup_json else None,
        max_batch_size=args.max_batch_size,
        max_batch_wait_s=args.max_batch_wait_ms / 1000,
    )
    if args.socket and "AIP_HTTP_PORT" not in os.environ:
        server = await start_unix_server(app, args.socket, args.max_body_bytes)
        log.info("listening on %s, loading %s", args.socket, args.artifact)
    else:
        server = await start_server(app, args.host, port, args.max_body_bytes)
        bound = server.sockets[0].getsockname()[1]
        if args.port_file:
            tmp = args.port_file.with_suffix(".tmp")
            tmp.write_text(str(bound))
            tmp.replace(args.port_file)
        log.info("listening on %s:%s, loading %s", args.host, bound, args.artifact)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app.start_loading()
    await stop.wait()
    server.close()  # stop accepting; requests already received are answered first
    if not await app.drain(args.drain_seconds):
        log.warning("stopping with %d request(s) still in flight", app.in_flight)
    app.close()
    return 1 if app.phase is Phase.FAILED else 0


def _gpu_engine(args: argparse.Namespace) -> int:
    """A Hugging Face-style folder: vLLM where the model's environment has it, else
    transformers' continuous batching (both installed in that environment only)."""
    if importlib.util.find_spec("vllm") is not None:
        from berth.runtime import vllm_engine

        return vllm_engine.serve(
            args.artifact, args.socket, args.max_concurrency, args.drain_seconds
        )
    from berth.runtime import transformers_engine

    return transformers_engine.serve(
        args.artifact, args.socket, args.max_concurrency, args.drain_seconds
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    given = argv if argv is not None else sys.argv[1:]
    args = _parse(given)
    if args.format in RELAYED_FORMATS and not args.socket:
        from berth.runtime import relay

        return relay.serve(given, args.host, args.port, args.port_file)
    if args.format == "huggingface":
        return _gpu_engine(args)
    if args.format == "container":
        from berth.runtime import container

        return container.serve(
            args.artifact, args.socket, args.container_json, args.drain_seconds, args.image_json
        )
    if args.format == "gguf":
        from berth.runtime import engine  # imports the engine, installed in this env only

        return engine.serve(
            args.artifact,
            args.socket,
            args.max_concurrency,
            args.drain_seconds,
            embeddings=args.task == EMBEDDINGS_TASK,
        )
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    status = main()
    # In-flight requests are drained by now; a model thread still busy (a load that takes
    # minutes, a stuck predict) must not hold the process past its stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
