"""The wire type of ``GET /api/2.0/serving-endpoints/{name}/metrics-history`` (berth's own).

Every list holds one value per minute of ``minutes``, oldest first, so a chart's x axis is
``minutes`` and each series plots as it is. Rates divide a minute's sums by its seconds: 60,
but for the last minute, which is still going, only the seconds it has run (``last_minute_s``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Series(BaseModel):
    """One served entity's figures per minute, or the endpoint's summed (``total``)."""

    requests: list[int] = Field(description="Requests answered in the minute.")
    errors: list[int] = Field(description="Of them, answered with a status of 400 or more.")
    requests_per_s: list[float]
    errors_per_s: list[float] = Field(description="Answers with a status of 400 or more.")
    server_errors_per_s: list[float] = Field(description="Answers with a status of 500 or more.")
    p50_ms: list[float | None] = Field(
        description="Median latency berth measured (arrival to last byte), from a histogram "
        "(interpolated within its bucket, as Prometheus' histogram_quantile); null in a "
        "minute without requests."
    )
    p99_ms: list[float | None] = Field(description="99th percentile latency, as p50_ms.")
    input_tokens_per_s: list[float] = Field(description="Prompt tokens, for LLM endpoints.")
    output_tokens_per_s: list[float] = Field(description="Generated tokens, for LLM endpoints.")
    replicas_current: list[int | None] = Field(
        description="Replicas ready as of the minute's end (a rollout shows both versions'); "
        "null where none was recorded: an external model, an entity whose environment is "
        "still being built, or a minute the controller did not run. In total, the entities' "
        "sum."
    )
    replicas_desired: list[int | None] = Field(
        description="Replicas the autoscaler wanted as of the minute's end, as replicas_current."
    )


class MetricsHistory(BaseModel):
    step_s: int = Field(description="Seconds per point: always 60.")
    now_ms: int = Field(description="When the answer was made, epoch milliseconds.")
    minutes: list[int] = Field(description="Epoch milliseconds at the start of each minute.")
    last_minute_s: float = Field(
        description="Seconds of the last minute elapsed so far: what its rates divide by."
    )
    series: dict[str, Series] = Field(
        description="Per served entity: the endpoint's configured ones, then any other that "
        "answered requests in the window, by name."
    )
    total: Series = Field(
        description="The whole endpoint, requests refused before a served entity was chosen "
        "(authentication, rate limits) included."
    )
