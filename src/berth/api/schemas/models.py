"""Wire types of the models resource: registered models and their versions."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from berth.api.schemas.container_spec import ContainerSpec
from berth.api.schemas.external_models import Task
from berth.api.schemas.strict import Strict
from berth.core.artifact_copies import as_uri
from berth.core.errors import InvalidParameter
from berth.registry.formats import ContainerVersion
from berth.registry.sources import ArtifactSource, NoArtifact, SourceUri
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


class ContainerFields(Strict):
    """What makes a version a custom container: in a JSON body, or as the form fields of an
    upload (``container_spec`` then JSON text)."""

    container_spec: ContainerSpec | None = None
    task: Task | None = None
    """berth's extension: the OpenAI-style task the container's server answers on its own
    ``/v1/...`` routes, so berth's OpenAI routes reach it."""

    @model_validator(mode="after")
    def _task_of_a_container(self) -> Self:
        if self.task is not None and self.container_spec is None:
            raise InvalidParameter(
                f"task {self.task} says what a custom container's server answers: give "
                "container_spec too, or leave task out (other formats tell their task "
                "themselves)."
            )
        return self

    def container(self) -> ContainerVersion | None:
        if self.container_spec is None:
            return None
        return ContainerVersion(self.container_spec.normalised(), self.task)


class CreateVersionRequest(ContainerFields):
    """The JSON form of registering a version; the other form is a multipart upload."""

    source: str | None = Field(None, min_length=1)
    description: str = ""

    @model_validator(mode="after")
    def _something_to_register(self) -> Self:
        if self.source is None and self.container_spec is None:
            raise InvalidParameter(
                "Give source (the artifact's path or URI), container_spec (a model server of "
                "your own), or both."
            )
        return self

    def artifact(self) -> ArtifactSource:
        return NoArtifact() if self.source is None else SourceUri(self.source)


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
            artifact_uri=as_uri(info.artifact_path),
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
