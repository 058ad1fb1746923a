"""llama.cpp's server alone, for bench/llm.py: the same settings as an open LLM's replica
(``berth.runtime.engine.engine_params``: slots, context per slot, threads as
``engine_threads`` picks them, no busy-waiting, continuous batching), listening on 127.0.0.1
TCP instead of a Unix socket.

Run with the engine venv's Python and ``PYTHONPATH`` on berth's ``src`` (only
``berth.runtime.engine`` is imported, which needs nothing but the standard library and
xllamacpp): ``python engine_alone.py WEIGHTS PORT SLOTS``. Prints ``ready`` and the thread
count once the first token is generated; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    weights, port, slots = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before llama.cpp's threads inherit it
    import xllamacpp

    from berth.runtime.engine import engine_params, engine_threads, first_answer

    threads = engine_threads(len(os.sched_getaffinity(0)))  # as a replica's serve() does
    params = engine_params(weights, "127.0.0.1", slots, threads)
    params.port = port
    started = time.monotonic()
    server = xllamacpp.Server(params)
    first_answer(server, embeddings=False)
    print(f"ready in {time.monotonic() - started:.2f} s, threads {threads}", flush=True)
    signal.sigwait(stop)
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
