"""What gateways tell the controller about demand, per served entity, for autoscaling.

Counters only grow (per gateway process), so a reader that samples them now and then still
sees every short request between two samples: ``busy_s`` over an interval is the mean number
of requests in flight during it (Little's law), however brief each request was. An open LLM
served with provisioned throughput also counts its tokens in replicas' worth of its band
(``band_s``): over an interval, the mean number of replicas its finished requests kept busy
at the calibrated rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EntityKey = tuple[str, str]
"""(endpoint name, served entity name)."""


@dataclass(frozen=True, slots=True)
class EntityLoad:
    in_flight: int = 0
    """Requests on the entity's replicas now."""
    waiting: int = 0
    """Requests held for it now: every replica busy, or none started yet (scaled to zero)."""
    busy_s: float = 0.0
    """Seconds of replica time the finished requests held, summed since the gateway started."""
    served: int = 0
    """Requests finished since the gateway started."""
    band_s: float = 0.0
    """Provisioned throughput only: the tokens finished requests used, each over one replica's
    tokens/s (the band's chunk), summed since the gateway started."""
    band_queued_s: float = 0.0
    """Provisioned throughput only: the same for the token estimates of the requests waiting
    for the band now."""

    def __add__(self, other: EntityLoad) -> EntityLoad:
        return EntityLoad(
            self.in_flight + other.in_flight,
            self.waiting + other.waiting,
            self.busy_s + other.busy_s,
            self.served + other.served,
            self.band_s + other.band_s,
            self.band_queued_s + other.band_queued_s,
        )


LoadReport = Mapping[EntityKey, EntityLoad]


def report_to_json(report: LoadReport) -> list[list[Any]]:
    return [
        [
            endpoint,
            entity,
            load.in_flight,
            load.waiting,
            load.busy_s,
            load.served,
            load.band_s,
            load.band_queued_s,
        ]
        for (endpoint, entity), load in report.items()
    ]


def report_from_json(rows: Iterable[Any]) -> dict[EntityKey, EntityLoad]:
    """The inverse of ``report_to_json``; ``ValueError`` on a malformed row. A row of a gateway
    that predates provisioned throughput (six fields) reads with no band figures."""
    report: dict[EntityKey, EntityLoad] = {}
    for row in rows:
        try:
            endpoint, entity, in_flight, waiting, busy_s, served, *band = row
            band_s, band_queued_s = band or (0.0, 0.0)
            report[(str(endpoint), str(entity))] = EntityLoad(
                int(in_flight),
                int(waiting),
                float(busy_s),
                int(served),
                float(band_s),
                float(band_queued_s),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed load row {row!r}: {exc}") from exc
    return report
