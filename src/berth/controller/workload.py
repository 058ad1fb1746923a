"""The reference workload a throughput chunk is measured at.

``slots`` chat completions at once, each the same ~64-token prompt answered with exactly
``MAX_TOKENS`` tokens (llama.cpp's ``ignore_eos``, so every answer has the same length, and no
prompt cache, so every request pays its prompt as a new caller's would). They go in rounds:
one short warm-up round (``WARM_UP_TOKENS`` each: the engine's first batches allocate what
later ones reuse), then rounds until ``seconds`` of wall time have passed. With every answer
the same length the slots finish together, so a round keeps every slot busy to its end and
the rate is what one replica sustains. The rate counts prompt and completion tokens over the
measured rounds' wall time, as the gateway's admission reserves and settles them against the
band: a band of N tokens/s is what N measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from berth.core.errors import InvalidParameter

PROMPT = (
    "You keep the lighthouse on a small island. Describe, in plain sentences, one ordinary "
    "evening there: the weather, the sea, the lamp, the sounds, the supper you cook, and "
    "the ships you see pass before you go to sleep."
)
"""About 64 tokens once a chat template wraps it (80 for SmolLM2; the stored method has the
exact count of the version calibrated)."""
MAX_TOKENS = 64
WARM_UP_TOKENS = 8
ROUTE = "/v1/chat/completions"
REQUEST_TIMEOUT_S = 300.0
"""A round on a busy machine can take tens of seconds; past this the engine is stuck."""


@dataclass(frozen=True, slots=True)
class Rounds:
    """What the measured rounds came to so far."""

    rounds: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    """Of one request."""
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Prompt and completion tokens per second."""
        total = self.prompt_tokens * self.requests + self.completion_tokens
        return total / self.seconds if self.seconds > 0 else 0.0


def describe(slots: int, seconds: float) -> str:
    return (
        f"{slots} concurrent chat completions of one ~64-token prompt, each answered with "
        f"{MAX_TOKENS} tokens (ignore_eos, no prompt cache), in rounds for {seconds:g} s "
        f"after one warm-up round of {WARM_UP_TOKENS}-token answers"
    )


async def measure(
    client: httpx.AsyncClient,
    slots: int,
    seconds: float,
    on_round: Callable[[Rounds], None],
) -> Rounds:
    """Warm up, then run rounds of ``slots`` requests until ``seconds`` have passed (one
    round at least); ``client`` talks to the engine. ``on_round`` hears the totals after
    each measured round. Raises ``InvalidParameter`` when the engine refuses a request."""
    await _round(client, slots, WARM_UP_TOKENS)
    done = Rounds()
    started = time.monotonic()
    while done.rounds == 0 or done.seconds < seconds:
        usages = await _round(client, slots, MAX_TOKENS)
        done = replace(
            done,
            rounds=done.rounds + 1,
            requests=done.requests + len(usages),
            prompt_tokens=usages[0][0],
            completion_tokens=done.completion_tokens + sum(u[1] for u in usages),
            seconds=time.monotonic() - started,
        )
        on_round(done)
    return done


async def _round(client: httpx.AsyncClient, slots: int, tokens: int) -> list[tuple[int, int]]:
    """(prompt tokens, completion tokens) of each of ``slots`` requests sent at once."""
    return list(await asyncio.gather(*(_request(client, tokens) for _ in range(slots))))


async def _request(client: httpx.AsyncClient, tokens: int) -> tuple[int, int]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "cache_prompt": False,
    }
    try:
        answer = await client.post(ROUTE, json=body, timeout=REQUEST_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise InvalidParameter(f"the engine did not answer the reference workload: {exc}") from exc
    if answer.status_code != 200:
        raise InvalidParameter(
            f"the engine refused the reference workload ({answer.status_code}): {answer.text[:500]}"
        )
    usage = answer.json().get("usage") or {}
    return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
