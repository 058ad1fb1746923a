"""Driving one address with wrk: a warm-up, then one fixed-duration run per concurrency, with
the CPU time the server's processes used during each run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wrk import run

WARM_UP_S = 2
WARM_UP_EACH_S = 1

CpuProbe = Callable[[], dict[str, float]]
"""CPU seconds used so far, by part of the server (e.g. {"server": 12.3})."""


@dataclass(frozen=True)
class Load:
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int = 0
    socket_errors: tuple[int, int, int, int] = (0, 0, 0, 0)
    """connect, read, write, timeout (wrk's own timeout: 2 s)"""
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per request, by part of the server."""

    @property
    def errors_text(self) -> str:
        kinds = zip(("connect", "read", "write", "timeout"), self.socket_errors, strict=True)
        parts = [f"{n} non-2xx"] if (n := self.non_2xx) else []
        parts += [f"{n} {kind}" for kind, n in kinds if n]
        return f"{self.errors} ({', '.join(parts)})" if parts else str(self.errors)

    @property
    def cpu_ms_total(self) -> float | None:
        return sum(self.cpu_ms.values()) if self.cpu_ms else None


def warm_up(url: str, body: str, concurrency: int, token: str | None = None) -> None:
    run(url, body, concurrency, WARM_UP_S, token)


def measure(
    url: str,
    body: str,
    concurrencies: Iterable[int],
    seconds: int,
    log: Callable[[str], None],
    token: str | None = None,
    label: str = "",
    cpu: CpuProbe | None = None,
) -> tuple[dict[int, Load], dict[int, str]]:
    """wrk at each concurrency (1 s at that concurrency first); failed runs are kept apart."""
    loads: dict[int, Load] = {}
    errors: dict[int, str] = {}
    for concurrency in concurrencies:
        try:
            run(url, body, concurrency, WARM_UP_EACH_S, token)
            before = cpu() if cpu else {}
            result = run(url, body, concurrency, seconds, token)
            after = cpu() if cpu else {}
        except Exception as exc:  # a failed run is a figure of its own, not the end of the run
            errors[concurrency] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"    {label}c={concurrency}: failed: {errors[concurrency]}")
            continue
        per_request = {
            part: 1000 * (after[part] - before.get(part, 0.0)) / max(result.requests, 1)
            for part in after
        }
        load = Load(
            concurrency,
            result.rps,
            result.p50_ms,
            result.p99_ms,
            result.requests,
            result.errors,
            result.non_2xx,
            result.socket_errors,
            per_request,
        )
        loads[concurrency] = load
        cpu_text = f", CPU {load.cpu_ms_total:.2f} ms/req" if load.cpu_ms_total else ""
        log(
            f"    {label}c={concurrency}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
            f"p99 {load.p99_ms:.2f} ms, errors {load.errors_text}{cpu_text}"
        )
    return loads, errors
