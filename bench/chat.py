"""Benchmark: chat completions through berth's gateway vs straight to the upstream server.

Starts the local OpenAI-compatible test server (``tests/fakes/llm_server.py``) and a scratch
``berth serve`` with an external-model endpoint on it, then drives both with wrk at
concurrency 1, 8 and 64. Run: ``./uvw run python bench/chat.py [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serving import TOKEN, row, start_berth, wait  # noqa: E402
from tests.fakes.llm_server import FakeLlmServer  # noqa: E402
from wrk import run  # noqa: E402

BODY = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    upstream = FakeLlmServer(record=False).start()
    with tempfile.TemporaryDirectory(prefix="berth-bench-chat-") as tmp:
        # The upstream is this machine's test server: the egress rules must allow it.
        proc, url = start_berth(Path(tmp), BERTH_PROVIDERS__ALLOWED_HOSTS="127.0.0.1")
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            block = {
                "name": "gpt-4o",
                "provider": "openai",
                "task": "llm/v1/chat",
                "openai_config": {
                    "openai_api_key_plaintext": upstream.api_key,
                    "openai_api_base": f"{upstream.url}/v1",
                },
            }
            config = {"served_entities": [{"external_model": block}]}
            created = api.post(
                "/api/2.0/serving-endpoints", json={"name": "chat", "config": config}
            )
            created.raise_for_status()
            wait(
                lambda: (
                    api.get("/api/2.0/serving-endpoints/chat").json()["state"]["ready"] == "READY"
                ),
                60,
                "the chat endpoint",
            )
            through_body = json.dumps({**BODY, "model": "chat"})
            direct_body = json.dumps({**BODY, "model": "gpt-4o"})
            # The stand-in upstream runs in this process: keep its collector off the start-up
            # heap, or its full collections show up as berth's tail too.
            gc.collect()
            gc.freeze()
            print("| path | concurrency | req/s | p50 ms | p99 ms | errors |")
            print("| --- | --- | --- | --- | --- | --- |")
            for concurrency in (1, 8, 64):
                through = run(
                    f"{url}/serving-endpoints/chat/completions",
                    through_body,
                    concurrency,
                    args.seconds,
                    TOKEN,
                )
                direct = run(
                    f"{upstream.url}/v1/chat/completions",
                    direct_body,
                    concurrency,
                    args.seconds,
                    upstream.api_key,
                )
                print(row("berth gateway", through))
                print(row("upstream direct", direct))
                print(
                    f"|   added | {concurrency} | {through.rps / direct.rps:.2f}x "
                    f"| +{through.p50_ms - direct.p50_ms:.2f} "
                    f"| +{through.p99_ms - direct.p99_ms:.2f} | |"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            upstream.stop()


if __name__ == "__main__":
    main()
