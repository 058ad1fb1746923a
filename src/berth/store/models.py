"""Registered models and their versions; which endpoints serve a version (read-only there)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.endpoint_config import EndpointConfigDoc, ServedEntity, entities_of
from berth.core.errors import AlreadyExists, NotFound
from berth.store.tables import EndpointRow, Json, ModelRow, ModelVersionRow


@dataclass(frozen=True, slots=True)
class ModelTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    description: str
    tags: tuple[ModelTag, ...]
    creator: str
    created_at: int
    updated_at: int
    latest_version: int | None


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What registering a version records, besides its number."""

    source: str
    format: str
    status: str
    artifact_path: str
    details: Mapping[str, Any]
    description: str
    creator: str


@dataclass(frozen=True, slots=True)
class VersionInfo:
    model: str
    version: int
    source: str
    format: str
    status: str
    artifact_path: str
    details: Mapping[str, Any]
    description: str
    creator: str
    created_at: int


def create_model(
    session: Session,
    *,
    name: str,
    description: str,
    tags: Sequence[ModelTag],
    creator: str,
    now_ms: int,
) -> ModelInfo:
    row = ModelRow(
        name=name,
        description=description,
        tags=[{"key": t.key, "value": t.value} for t in tags],
        creator=creator,
        created_at=now_ms,
        updated_at=now_ms,
        last_version=0,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"Model '{name}' already exists.") from exc
    return _model_info(row, None)


def get_model(session: Session, name: str) -> ModelInfo:
    row = _model_row(session, name)
    return _model_info(row, _latest_versions(session, [row.id]).get(row.id))


def count_models_by(session: Session, creator: str) -> int:
    return len(session.scalars(select(ModelRow.name).where(ModelRow.creator == creator)).all())


def list_models(session: Session) -> list[ModelInfo]:
    rows = session.scalars(select(ModelRow).order_by(ModelRow.name)).all()
    latest = _latest_versions(session, [row.id for row in rows])
    return [_model_info(row, latest.get(row.id)) for row in rows]


def delete_model(session: Session, name: str) -> None:
    row = _model_row(session, name)
    session.execute(delete(ModelVersionRow).where(ModelVersionRow.model_id == row.id))
    session.delete(row)


def allocate_version(session: Session, name: str, now_ms: int) -> int:
    """The next version number of a model; numbers are never handed out twice.

    One ``UPDATE ... RETURNING`` both locks the model row and counts, so concurrent
    registrations get distinct numbers on PostgreSQL and on SQLite alike.
    """
    allocated = session.scalar(
        update(ModelRow)
        .where(ModelRow.name == name)
        .values(last_version=ModelRow.last_version + 1, updated_at=now_ms)
        .returning(ModelRow.last_version)
    )
    if allocated is None:
        raise _model_not_found(name)
    return int(allocated)


def add_version(
    session: Session, name: str, version: int, new: NewVersion, now_ms: int
) -> VersionInfo:
    row = ModelVersionRow(
        model_id=_model_row(session, name).id,
        version=version,
        source=new.source,
        format=new.format,
        status=new.status,
        artifact_path=new.artifact_path,
        details=dict(new.details),
        description=new.description,
        creator=new.creator,
        created_at=now_ms,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"Model '{name}' already has a version {version}.") from exc
    return _version_info(name, row)


def get_version(session: Session, name: str, version: int) -> VersionInfo:
    return _version_info(name, _version_row(session, name, version))


def list_versions(session: Session, name: str) -> list[VersionInfo]:
    model = _model_row(session, name)
    rows = session.scalars(
        select(ModelVersionRow)
        .where(ModelVersionRow.model_id == model.id)
        .order_by(ModelVersionRow.version)
    ).all()
    return [_version_info(name, row) for row in rows]


def delete_version(session: Session, name: str, version: int, now_ms: int) -> None:
    row = _version_row(session, name, version)
    session.delete(row)
    session.execute(update(ModelRow).where(ModelRow.name == name).values(updated_at=now_ms))


def endpoints_serving(session: Session, name: str, version: int | None = None) -> list[str]:
    """Names of endpoints whose current or pending config serves the model (or one version).

    Configs are JSON documents; matching in Python keeps one query for SQLite and PostgreSQL,
    and endpoints are few.
    """
    rows = session.execute(
        select(EndpointRow.name, EndpointRow.config, EndpointRow.pending_config).order_by(
            EndpointRow.name
        )
    ).all()
    return [
        endpoint
        for endpoint, config, pending in rows
        if any(
            entity.entity_name == name
            and (version is None or entity.entity_version == str(version))
            for entity in _entities(config, pending)
        )
    ]


def _entities(*stored: Json | None) -> Iterable[ServedEntity]:
    """The served entities of stored config documents (None where there is none)."""
    return entities_of(*(EndpointConfigDoc.from_json(doc) for doc in stored if doc is not None))


def _model_row(session: Session, name: str) -> ModelRow:
    row = session.scalar(select(ModelRow).where(ModelRow.name == name))
    if row is None:
        raise _model_not_found(name)
    return row


def _version_row(session: Session, name: str, version: int) -> ModelVersionRow:
    model = _model_row(session, name)
    row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
        )
    )
    if row is None:
        raise NotFound(f"Model '{name}' has no version {version}.")
    return row


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"Model '{name}' does not exist.")


def _latest_versions(session: Session, model_ids: Sequence[int]) -> dict[int, int]:
    if not model_ids:
        return {}
    found = session.execute(
        select(ModelVersionRow.model_id, func.max(ModelVersionRow.version))
        .where(ModelVersionRow.model_id.in_(model_ids))
        .group_by(ModelVersionRow.model_id)
    ).all()
    return {model_id: int(latest) for model_id, latest in found}


def _model_info(row: ModelRow, latest_version: int | None) -> ModelInfo:
    return ModelInfo(
        name=row.name,
        description=row.description,
        tags=tuple(ModelTag(str(t["key"]), str(t.get("value", ""))) for t in row.tags),
        creator=row.creator,
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=latest_version,
    )


def _version_info(name: str, row: ModelVersionRow) -> VersionInfo:
    return VersionInfo(
        model=name,
        version=row.version,
        source=row.source,
        format=row.format,
        status=row.status,
        artifact_path=row.artifact_path,
        details=dict(row.details),
        description=row.description,
        creator=row.creator,
        created_at=row.created_at,
    )


def environment_users(session: Session) -> dict[str, list[str]]:
    """Environment hash → the model versions (``name/version``) registered with it."""
    users: dict[str, list[str]] = {}
    rows = session.execute(
        select(ModelRow.name, ModelVersionRow.version, ModelVersionRow.details)
        .join(ModelVersionRow, ModelVersionRow.model_id == ModelRow.id)
        .order_by(ModelRow.name, ModelVersionRow.version)
    )
    for name, version, details in rows:
        env_hash = (details or {}).get("environment", {}).get("hash")
        if env_hash:
            users.setdefault(env_hash, []).append(f"{name}/{version}")
    return users


def served_environments(session: Session) -> set[str]:
    """Hashes of the environments that current or in-progress endpoint configs run in."""
    served: set[tuple[str, int]] = set()
    for config, pending in session.execute(select(EndpointRow.config, EndpointRow.pending_config)):
        for entity in _entities(config, pending):
            if entity.entity_name and entity.entity_version:
                served.add((entity.entity_name, int(entity.entity_version)))
    hashes: set[str] = set()
    for name, version in served:
        try:
            details = get_version(session, name, version).details
        except NotFound:
            continue
        if env_hash := details.get("environment", {}).get("hash"):
            hashes.add(env_hash)
    return hashes
