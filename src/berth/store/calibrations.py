"""Calibrations: each open LLM version's measured throughput chunk, per kind of host."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.core.errors import NotFound
from berth.core.throughput import Calibration, CalibrationMethod
from berth.store.tables import CalibrationRow, ModelRow, ModelVersionRow


def get(session: Session, model: str, version: int, fingerprint: str) -> Calibration | None:
    """The version's calibration on hosts of ``fingerprint``, or None."""
    row = session.scalar(
        select(CalibrationRow)
        .join(ModelVersionRow, ModelVersionRow.id == CalibrationRow.model_version_id)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(
            ModelRow.name == model,
            ModelVersionRow.version == version,
            CalibrationRow.fingerprint == fingerprint,
        )
    )
    return None if row is None else _calibration(row)


def save(session: Session, model: str, version: int, calibration: Calibration) -> None:
    """Store ``calibration``, replacing the version's earlier one on the same kind of host."""
    version_id = session.scalar(
        select(ModelVersionRow.id)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(ModelRow.name == model, ModelVersionRow.version == version)
    )
    if version_id is None:
        raise NotFound(f"Model '{model}' has no version {version}.")
    row = session.scalar(
        select(CalibrationRow).where(
            CalibrationRow.model_version_id == version_id,
            CalibrationRow.fingerprint == calibration.fingerprint,
        )
    )
    if row is None:
        row = CalibrationRow(model_version_id=version_id, fingerprint=calibration.fingerprint)
        session.add(row)
    row.chunk_tps = calibration.chunk_tps
    row.method = calibration.method.to_json()
    row.calibrated_at = calibration.calibrated_at
    row.duration_s = calibration.duration_s
    session.flush()


def _calibration(row: CalibrationRow) -> Calibration:
    return Calibration(
        chunk_tps=row.chunk_tps,
        fingerprint=row.fingerprint,
        calibrated_at=row.calibrated_at,
        duration_s=row.duration_s,
        method=CalibrationMethod.from_json(row.method),
    )
