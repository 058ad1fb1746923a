"""Routes of the models resource: ``/api/2.0/models`` and their versions."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from berth import envs
from berth.api import access, registration
from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.models import (
    ContainerFields,
    CreateModelRequest,
    CreateVersionRequest,
    ListModelsResponse,
    ListModelVersionsResponse,
    Model,
    ModelResponse,
    ModelVersion,
    ModelVersionResponse,
)
from berth.api.services import Services
from berth.core.errors import BadRequest, InvalidParameter
from berth.core.permissions import effective_level
from berth.envs import spec_of
from berth.registry.formats import ContainerVersion
from berth.registry.names import parse_version
from berth.registry.sources import ArtifactSource, UploadedArchive
from berth.store import grants
from berth.store.models import VersionInfo

router = APIRouter(prefix="/api/2.0/models", tags=["models"])
MODEL = access.MODEL

UPLOAD_FIELD = "file"
CONTAINER_FIELDS = ("container_spec", "task")
"""Form fields of an upload that make it a custom container (the spec as JSON text)."""
Body = TypeVar("Body", bound=BaseModel)


@router.post("")
def create_model(
    body: CreateModelRequest, services: ServicesDep, principal: PrincipalDep
) -> ModelResponse:
    """Any principal may create a model; its creator gets CAN_MANAGE on it."""
    info = registration.create_model(
        services, principal, body.name, description=body.description, tags=body.model_tags()
    )
    return ModelResponse(model=Model.of(info))


@router.get("")
def list_models(services: ServicesDep, principal: PrincipalDep) -> ListModelsResponse:
    """The models the caller may read."""
    with services.db.transaction() as session:
        granted = grants.all_grants(session, MODEL)
    return ListModelsResponse(
        models=[
            Model.of(info)
            for info in services.registry.list_models()
            if effective_level(MODEL, granted.get(info.name, ()), principal) is not None
        ]
    )


@router.get("/{name}")
def get_model(name: str, services: ServicesDep, principal: PrincipalDep) -> ModelResponse:
    registration.require(services, principal, name, "CAN_READ")
    return ModelResponse(model=Model.of(services.registry.get_model(name)))


@router.delete("/{name}")
def delete_model(name: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, str]:
    registration.require(services, principal, name, "CAN_MANAGE")
    registration.delete_model(services, principal, name)
    return {}


@router.post("/{name}/versions")
async def create_version(
    name: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    build_env: Annotated[bool, Query(description="Also build its environment now.")] = False,
) -> ModelVersionResponse:
    """Register a version from ``{"source": ...}`` JSON or a multipart upload of an archive.

    A ``container_spec`` (and its ``task``), in the JSON or as form fields of the upload,
    makes the version a custom container; in JSON, ``source`` is then optional.
    The body's form decides the parsing, so this route reads it itself, then does the copy
    and the store writes in the threadpool like the plain ``def`` routes. With
    ``build_env=true`` the environment is built before answering, so deploys never wait.
    Needs CAN_EDIT on the model.
    """
    await run_in_threadpool(registration.require, services, principal, name, "CAN_EDIT")
    await run_in_threadpool(registration.require_code, services, principal)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form() as form:
            upload = form.get(UPLOAD_FIELD)
            if not isinstance(upload, UploadFile):
                raise InvalidParameter(
                    f"A multipart upload needs the archive in a file field named '{UPLOAD_FIELD}'."
                )
            source: ArtifactSource = UploadedArchive(upload.filename or "upload", upload.file)
            description = form.get("description")
            info = await run_in_threadpool(
                services.registry.create_version,
                name,
                source,
                description=description if isinstance(description, str) else "",
                creator=principal.name,
                admin=principal.is_admin,
                container=_form_container(form),
            )
    elif content_type.startswith("application/json") or not content_type:
        body = _validated(CreateVersionRequest, await request.body() or b"{}")
        info = await run_in_threadpool(
            services.registry.create_version,
            name,
            body.artifact(),
            description=body.description,
            creator=principal.name,
            admin=principal.is_admin,
            container=body.container(),
        )
    else:
        raise BadRequest(
            f"Unsupported content type '{content_type}': send JSON {{\"source\": ...}} or a "
            f"multipart/form-data upload with the archive in field '{UPLOAD_FIELD}'."
        )
    await run_in_threadpool(registration.record_version, services, principal, info)
    if build_env:
        await run_in_threadpool(_build_environment, services, info)
    return ModelVersionResponse(model_version=ModelVersion.of(info))


def _build_environment(services: Services, info: VersionInfo) -> None:
    spec = spec_of(dict(info.details.get("environment") or {}))
    if spec is None:
        return
    try:
        envs.build_env(
            spec,
            services.settings.envs_dir,
            artifact=services.artifact_copies.local(info.artifact_path),
            sandbox=services.sandbox,
        )
    except envs.EnvBuildFailed as exc:
        raise InvalidParameter(
            f"Version {info.version} of model '{info.model}' is registered, but its "
            f"environment failed to build: {exc.message}"
        ) from exc


@router.get("/{name}/versions")
def list_versions(
    name: str, services: ServicesDep, principal: PrincipalDep
) -> ListModelVersionsResponse:
    registration.require(services, principal, name, "CAN_READ")
    versions = services.registry.list_versions(name)
    return ListModelVersionsResponse(model_versions=[ModelVersion.of(v) for v in versions])


@router.get("/{name}/versions/{version}")
def get_version(
    name: str, version: str, services: ServicesDep, principal: PrincipalDep
) -> ModelVersionResponse:
    parse_version(version)  # a malformed version is the caller's error, whatever the model
    registration.require(services, principal, name, "CAN_READ")
    info = services.registry.get_version(name, version)
    return ModelVersionResponse(model_version=ModelVersion.of(info))


@router.delete("/{name}/versions/{version}")
def delete_version(
    name: str, version: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, str]:
    parse_version(version)
    registration.require(services, principal, name, "CAN_MANAGE")
    services.registry.delete_version(name, version)
    with services.db.transaction() as session:
        after = {"version": version}
        subject = (MODEL, name)
        access.record_change(
            session,
            principal,
            "models.delete_version",
            subject,
            services.clock.now_ms(),
            after=after,
        )
    return {}


def _form_container(form: FormData) -> ContainerVersion | None:
    """An upload's ``container_spec`` (JSON text) and ``task`` form fields, where given."""
    fields: dict[str, object] = {
        key: value for key in CONTAINER_FIELDS if isinstance(value := form.get(key), str)
    }
    spec = fields.get("container_spec")
    if isinstance(spec, str):
        try:
            fields["container_spec"] = json.loads(spec)
        except ValueError as exc:
            raise BadRequest(f"The container_spec form field is not JSON: {exc}.") from exc
    return _validated(ContainerFields, fields).container()


def _validated(model: type[Body], data: bytes | dict[str, object]) -> Body:
    """``data`` (JSON text or parsed) as ``model``; its errors named as a body's would be."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
