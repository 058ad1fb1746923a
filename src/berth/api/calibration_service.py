"""Throughput chunks of model versions, asked through the API: Databricks'
``get-model-optimization-info``, berth's calibration routes, and the chunks an endpoint's
config is checked against, its replicas counted in and its views show.

Reading a chunk takes CAN_READ on the model. Measuring one runs the model on this server,
so it also takes the ``run-model-code`` entitlement (and CAN_EDIT to measure again, since
that moves the band of every endpoint serving the version).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from berth.api import access
from berth.api.endpoint_config import NormalisedConfig
from berth.api.provisioned import check_multiples, check_open_llm, optimization_info
from berth.api.services import Services
from berth.core.dataplane import CALIBRATED_FORMATS, generates_tokens
from berth.core.endpoint_config import ServedEntity, entities_of
from berth.core.errors import InvalidParameter, NotFound
from berth.core.principal import Principal
from berth.core.throughput import (
    Calibration,
    CalibrationProgress,
    CalibrationState,
    asks_throughput,
)
from berth.registry.names import parse_version
from berth.store import models
from berth.store.endpoints import EndpointRecord
from berth.store.models import VersionInfo

Json = dict[str, Any]
ModelKey = tuple[str, str]
"""(model, version) of a registered model version."""


class CalibrationService:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._throughput = services.throughput

    def optimization_info(self, principal: Principal, model: str, version: str) -> Json:
        """Whether the version can be served with provisioned throughput and, for an open
        LLM, its chunk on this host, calibrated first when there is none (this blocks)."""
        info = self._version(principal, model, version, "CAN_READ")
        if not generates_tokens(info.format, info.details):
            return optimization_info(info.format, info.details, None)
        calibration = self._throughput.stored(model, version)
        if calibration is None:
            self._may_run(principal, "calibrate model versions")
            calibration = self._throughput.calibrated(model, version)
        return optimization_info(info.format, info.details, calibration)

    def recalibrate(self, principal: Principal, model: str, version: str) -> CalibrationProgress:
        """berth's extension: measure the chunk again (replacing the stored one once done),
        or join the run going; answers at once."""
        info = self._version(principal, model, version, "CAN_EDIT")
        _check_open_llm(info)
        self._may_run(principal, "calibrate model versions")
        return self._throughput.recalibrate(model, version)

    def progress(self, principal: Principal, model: str, version: str) -> CalibrationProgress:
        """The calibration going, else the last one: ended in this server, or as stored."""
        info = self._version(principal, model, version, "CAN_READ")
        _check_open_llm(info)
        progress = self._throughput.progress(model, version)
        if progress is not None:
            return progress
        stored = self._throughput.stored(model, version)
        if stored is None:
            raise NotFound(
                f"Model '{model}' version {version} has not been calibrated on this host; "
                "POST to this route (or `berth models calibrate`) to measure it."
            )
        return CalibrationProgress(
            CalibrationState.DONE,
            "done",
            f"{stored.chunk_tps} tokens/s per replica on this host.",
            stored.duration_s,
            1.0,
            stored,
        )

    def checked(
        self, config: NormalisedConfig, formats: Mapping[ModelKey, str]
    ) -> dict[ModelKey, int]:
        """The chunk of each open LLM version ``config`` sizes in throughput (measured now
        when this host has none yet: this blocks), each such entity's band checked against
        it; ``formats`` are those versions' (``sized_in_throughput``)."""
        chunks: dict[ModelKey, int] = {}
        for entity in config.served_entities:
            key = entity.registered_model
            if key is None or key not in formats:
                continue
            label = f"Served entity '{entity.name}'"
            check_open_llm(label, entity, formats[key])
            calibration = self._throughput.calibrated(*key)
            check_multiples(label, entity, calibration)
            chunks[key] = calibration.chunk_tps
        return chunks

    def chunk_of(self, measured: Mapping[ModelKey, int]) -> Callable[[ServedEntity], int | None]:
        """An entity's chunk, for the replica quotas: as just ``measured``, else as stored."""

        def chunk(entity: ServedEntity) -> int | None:
            key = entity.registered_model
            if key is None or not asks_throughput(entity):
                return None
            if key in measured:
                return measured[key]
            found = self._throughput.stored(*key)
            return None if found is None else found.chunk_tps

        return chunk

    def of_endpoint(self, record: EndpointRecord) -> dict[ModelKey, Calibration]:
        """The chunks, as calibrated on this host, of the versions the endpoint's configs
        size in throughput (for its views)."""
        found: dict[ModelKey, Calibration] = {}
        for entity in entities_of(record.config, record.pending_config):
            key = entity.registered_model
            if key is not None and asks_throughput(entity) and key not in found:
                calibration = self._throughput.stored(*key)
                if calibration is not None:
                    found[key] = calibration
        return found

    def _version(self, principal: Principal, model: str, version: str, needed: str) -> VersionInfo:
        number = parse_version(version)
        with self._services.db.transaction() as session:
            access.model(session, model, principal, needed)
            return models.get_version(session, model, number)

    def _may_run(self, principal: Principal, action: str) -> None:
        with self._services.db.transaction() as session:
            access.require_run_model_code(
                session, principal, self._services.settings.access, action
            )


def sized_in_throughput(session: Session, config: NormalisedConfig) -> dict[ModelKey, str]:
    """The format of each model version ``config`` sizes in throughput."""
    return {
        key: models.get_version(session, key[0], parse_version(key[1])).format
        for entity in config.served_entities
        if (key := entity.registered_model) is not None and asks_throughput(entity)
    }


def _check_open_llm(info: VersionInfo) -> None:
    if info.format not in CALIBRATED_FORMATS:
        raise InvalidParameter(
            f"Model '{info.model}' version {info.version} is a {info.format} model: only open "
            "LLMs (GGUF) have a throughput chunk to calibrate."
        )
    if not generates_tokens(info.format, info.details):
        raise InvalidParameter(
            f"Model '{info.model}' version {info.version} is an embedding model: a throughput "
            "chunk measures generated tokens, so it is sized by concurrency "
            "(workload_size or min/max_provisioned_concurrency)."
        )
