"""Registering models and their versions: the store rows and the artifact folders together."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import Conflict, InvalidParameter
from berth.registry import formats, sources
from berth.registry.artifacts import ArtifactStore
from berth.registry.formats import ContainerVersion
from berth.registry.names import check_model_name, parse_version
from berth.registry.source_policy import SourcePolicy
from berth.registry.sources import ArtifactSource
from berth.store import models
from berth.store.db import Database
from berth.store.models import ModelInfo, ModelTag, NewVersion, VersionInfo

READY = "READY"


EnvironmentInspector = Callable[[Path, str], Mapping[str, Any]]
"""Resolves and validates an artifact's environment spec; its answer goes to the details."""


class Registry:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        artifacts: ArtifactStore,
        inspect_env: EnvironmentInspector,
        policy: SourcePolicy,
    ) -> None:
        """``policy`` says what sources registration may read."""
        self._policy = policy
        self._db = db
        self._clock = clock
        self._artifacts = artifacts
        self._inspect_env = inspect_env

    def create_model(
        self, name: str, *, description: str, tags: Sequence[ModelTag], creator: str
    ) -> ModelInfo:
        check_model_name(name)
        _check_tags(tags)
        with self._db.transaction() as session:
            return models.create_model(
                session,
                name=name,
                description=description,
                tags=tags,
                creator=creator,
                now_ms=self._clock.now_ms(),
            )

    def get_model(self, name: str) -> ModelInfo:
        with self._db.transaction() as session:
            return models.get_model(session, name)

    def list_models(self) -> list[ModelInfo]:
        with self._db.transaction() as session:
            return models.list_models(session)

    def delete_model(self, name: str) -> None:
        with self._artifacts.removing() as remove, self._db.transaction() as session:
            models.delete_model(session, name)
            _refuse_if_served(session, name, None)
            remove(self._artifacts.model_location(name))

    def create_version(
        self,
        name: str,
        source: ArtifactSource,
        *,
        description: str,
        creator: str,
        admin: bool = False,
        container: ContainerVersion | None = None,
    ) -> VersionInfo:
        """Copy, unpack and validate the artifact, then number it and move it into place.

        With ``container`` the version is that custom container, whatever the artifact holds.
        The copy happens outside any store transaction, which would otherwise hold a write
        lock for as long as a download takes.
        """
        self.get_model(name)
        with self._artifacts.staging() as work:
            root = sources.fetch(source, work, self._policy, admin)
            if container is None:
                detected = formats.detect(root, source.label)
            else:
                detected = container.detected()
            details = {
                **detected.details,
                "environment": self._environment(root, detected, container),
            }
            with self._artifacts.placing() as place, self._db.transaction() as session:
                now = self._clock.now_ms()
                number = models.allocate_version(session, name, now)
                target = self._artifacts.version_location(name, number)
                place(root, target)
                new = NewVersion(
                    source=source.recorded,
                    format=detected.format.value,
                    status=READY,
                    artifact_path=target,
                    details=details,
                    description=description,
                    creator=creator,
                )
                return models.add_version(session, name, number, new, now)

    def _environment(
        self, root: Path, detected: formats.DetectedArtifact, container: ContainerVersion | None
    ) -> dict[str, Any]:
        if container is not None and container.uses_image:
            return dict(formats.IMAGE_ENVIRONMENT)
        return dict(self._inspect_env(root, detected.format.value))

    def get_version(self, name: str, version: str) -> VersionInfo:
        number = parse_version(version)
        with self._db.transaction() as session:
            return models.get_version(session, name, number)

    def list_versions(self, name: str) -> list[VersionInfo]:
        with self._db.transaction() as session:
            return models.list_versions(session, name)

    def delete_version(self, name: str, version: str) -> None:
        number = parse_version(version)
        with self._artifacts.removing() as remove, self._db.transaction() as session:
            models.delete_version(session, name, number, self._clock.now_ms())
            _refuse_if_served(session, name, number)
            remove(self._artifacts.version_location(name, number))


def _refuse_if_served(session: Session, name: str, version: int | None) -> None:
    endpoints = models.endpoints_serving(session, name, version)
    if not endpoints:
        return
    what = f"Model '{name}'" if version is None else f"Version {version} of model '{name}'"
    listed = ", ".join(f"'{endpoint}'" for endpoint in endpoints)
    raise Conflict(
        f"{what} is served by endpoint(s) {listed}; change their served entities or delete "
        "them first."
    )


def _check_tags(tags: Sequence[ModelTag]) -> None:
    seen: set[str] = set()
    for tag in tags:
        if not tag.key:
            raise InvalidParameter("Tag keys must not be empty.")
        if tag.key in seen:
            raise InvalidParameter(f"Tag key '{tag.key}' is given twice; keys must be unique.")
        seen.add(tag.key)
