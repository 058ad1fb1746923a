"""Throughput chunks of model versions, asked through the API: Databricks'
``get-model-optimization-info`` and berth's calibration routes.

Reading a chunk takes CAN_READ on the model. Measuring one runs the model on this server,
so it also takes the ``run-model-code`` entitlement (and CAN_EDIT to measure again, since
that moves the band of every endpoint serving the version).
"""

from __future__ import annotations

from typing import Any

from berth.api import access
from berth.api.provisioned import optimization_info
from berth.api.services import Services
from berth.core.dataplane import ENGINE_FORMATS
from berth.core.errors import InvalidParameter, NotFound
from berth.core.principal import Principal
from berth.core.throughput import CalibrationProgress, CalibrationState
from berth.registry.names import parse_version
from berth.store import models
from berth.store.models import VersionInfo

Json = dict[str, Any]


class CalibrationService:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._throughput = services.throughput

    def optimization_info(self, principal: Principal, model: str, version: str) -> Json:
        """Whether the version can be served with provisioned throughput and, for an open
        LLM, its chunk on this host, calibrated first when there is none (this blocks)."""
        info = self._version(principal, model, version, "CAN_READ")
        if info.format not in ENGINE_FORMATS:
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


def _check_open_llm(info: VersionInfo) -> None:
    if info.format not in ENGINE_FORMATS:
        raise InvalidParameter(
            f"Model '{info.model}' version {info.version} is a {info.format} model: only open "
            "LLMs (GGUF) have a throughput chunk to calibrate."
        )
