"""Figures counted in other processes: gateway workers write prometheus-client's multiprocess
files (``PROMETHEUS_MULTIPROC_DIR``), the server renders them beside its own families.

The server process itself keeps ordinary in-memory values (its single-process path stays as
fast as it was); the two sources are summed by sample, which is what prometheus-client does
between the workers' files too: counters and histograms add up, and the data plane's gauges
are declared ``livesum``, so in-flight requests are the sum over live processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class Summed:
    """A collector: ``own``'s families and the multiprocess files in ``directory``, one family
    per name, with samples of the same name and labels added together."""

    def __init__(self, own: Collector, directory: Path) -> None:
        self._own = own
        path = str(directory)
        self._files = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        samples: dict[str, dict[SampleKey, Sample]] = {}
        theirs: Iterator[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        for family in chain(self._own.collect(), theirs):
            if family.name not in families:
                families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                samples[family.name] = {}
            kept = samples[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                found = kept.get(key)
                if found is None:
                    kept[key] = sample
                elif not sample.name.endswith("_created"):  # a time, not an amount: the first
                    kept[key] = found._replace(value=found.value + sample.value)
        for name, family in families.items():
            family.samples = list(samples[name].values())
            yield family
