"""Wire types of the models resource: registered models and their versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from berth.api.schemas.strict import Strict
from berth.store.models import ModelInfo, ModelTag, VersionInfo


class Tag(Strict):
    key: str = Field(min_length=1)
    value: str = ""


class CreateModelRequest(Strict):
    name: str
    description: str = ""
    tags: list[Tag] = Field(default_factory=list)

    def model_tags(self) -> list[ModelTag]:
        return [ModelTag(tag.key, tag.value) for tag in self.tags]


class CreateVersionRequest(Strict):
    """The JSON form of registering a version; the other form is a multipart upload."""

    source: str = Field(min_length=1)
    description: str = ""


class Model(BaseModel):
    name: str
    description: str
    tags: list[Tag]
    creator: str
    creation_timestamp: int
    last_updated_timestamp: int
    latest_version: str | None

    @classmethod
    def of(cls, info: ModelInfo) -> Model:
        return cls(
            name=info.name,
            description=info.description,
            tags=[Tag(key=tag.key, value=tag.value) for tag in info.tags],
            creator=info.creator,
            creation_timestamp=info.created_at,
            last_updated_timestamp=info.updated_at,
            latest_version=None if info.latest_version is None else str(info.latest_version),
        )


class ModelVersion(BaseModel):
    name: str
    version: str
    format: str
    status: str
    source: str
    creation_timestamp: int
    creator: str
    description: str
    artifact_uri: str
    details: dict[str, Any]

    @classmethod
    def of(cls, info: VersionInfo) -> ModelVersion:
        return cls(
            name=info.model,
            version=str(info.version),
            format=info.format,
            status=info.status,
            source=info.source,
            creation_timestamp=info.created_at,
            creator=info.creator,
            description=info.description,
            artifact_uri=Path(info.artifact_path).as_uri(),
            details=dict(info.details),
        )


class ModelResponse(BaseModel):
    model: Model


class ListModelsResponse(BaseModel):
    models: list[Model]


class ModelVersionResponse(BaseModel):
    model_version: ModelVersion


class ListModelVersionsResponse(BaseModel):
    model_versions: list[ModelVersion]
