"""Reading a relayed stream: events cut anywhere by the network, the usage, the tokens' times."""

from __future__ import annotations

import json
import time
from typing import Any

from berth.gateway.exchange import Served
from berth.gateway.stream_watch import StreamWatch


def events(*bodies: dict[str, Any]) -> bytes:
    return (
        b"".join(b"data: " + json.dumps(b).encode() + b"\n\n" for b in bodies) + b"data: [DONE]\n\n"
    )


def delta(content: str | None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": content}}]}


def test_events_cut_anywhere_are_read_whole() -> None:
    stream = events(
        delta(None),
        delta("Hel"),
        delta("lo"),
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
    )
    for size in (1, 3, 17, len(stream)):
        served = Served()
        watch = StreamWatch(served, time.perf_counter())
        for at in range(0, len(stream), size):
            watch.saw(stream[at : at + size])
        watch.finish()
        assert (served.input_tokens, served.output_tokens) == (7, 2), size
        assert served.ttft_ms is not None and served.itl_ms is not None, size


def test_only_events_with_generated_text_are_tokens() -> None:
    served = Served()
    started = time.perf_counter()
    watch = StreamWatch(served, started)
    watch.saw(events(delta(None), delta(""), {"choices": [{"text": "x"}]}))
    watch.finish()
    assert served.ttft_ms is not None and served.itl_ms is None, "one token: no gap"
    assert 0 <= served.ttft_ms <= (time.perf_counter() - started) * 1000
    assert (served.input_tokens, served.output_tokens) == (0, 0)


def test_a_stream_without_text_has_no_timings() -> None:
    served = Served()
    watch = StreamWatch(served, time.perf_counter())
    watch.saw(b'data: {"predictions": [1, 2]}\n\ndata: not json\n\n')
    watch.finish()
    assert (served.ttft_ms, served.itl_ms) == (None, None)
