"""Reading server-sent events, as OpenAI (data only) and Anthropic (named events) send them."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerEvent:
    event: str
    data: str


def _field(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name, value.removeprefix(" ")


async def read_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerEvent]:
    """Events from the text lines of a stream; comments and unknown fields are skipped."""
    event, data = "", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield ServerEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        name, value = _field(line)
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield ServerEvent(event or "message", "\n".join(data))
