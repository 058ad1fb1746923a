"""Wire types of the model garden (a berth extension): its catalogue and a registration."""

from __future__ import annotations

from pydantic import BaseModel, Field

from berth.api.schemas.strict import Strict
from berth.registry.garden import GardenModel


class GardenModelView(BaseModel):
    name: str
    title: str
    package: str
    version: str
    path: str
    """The weights inside the package."""
    format: str
    task: str
    license: str
    size_bytes: int
    installed: bool
    installed_in: str | None
    """``berth`` (berth's own environment) or ``garden`` (``$BERTH_HOME/garden``)."""

    @classmethod
    def of(cls, found: GardenModel) -> GardenModelView:
        entry = found.entry
        return cls(
            name=entry.name,
            title=entry.title,
            package=entry.package,
            version=entry.version,
            path=entry.path,
            format=entry.format.value,
            task=entry.task,
            license=entry.license,
            size_bytes=entry.size_bytes,
            installed=found.installed is not None,
            installed_in=None if found.installed is None else found.installed.value,
        )


class ListGardenResponse(BaseModel):
    models: list[GardenModelView]


class RegisterGardenModelRequest(Strict):
    model_name: str | None = Field(
        default=None,
        description="The registered model to add a version to (default: the "
        "garden model's name); made if missing.",
        min_length=1,
    )
    description: str = ""
