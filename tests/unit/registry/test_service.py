"""The registry over a real SQLite store: numbering, all-or-nothing writes, served versions."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from berth.core.endpoint_config import EndpointConfigDoc, ServedEntity, TrafficRoute
from berth.core.errors import AlreadyExists, Conflict, InvalidParameter, NotFound
from berth.envs import OWN_ENVIRONMENT, environment_details
from berth.registry.artifacts import ArtifactStore
from berth.registry.formats import IMAGE_ENVIRONMENT, ContainerVersion
from berth.registry.service import Registry
from berth.registry.source_policy import SourcePolicy
from berth.registry.sources import NoArtifact, SourceUri
from berth.store.db import Database
from berth.store.models import ModelTag
from berth.store.tables import EndpointRow, ModelRow, ModelVersionRow
from tests.unit.clock import StepClock

FAKES = Path(__file__).resolve().parents[2] / "fakes" / "models"
SUM_SCORE = SourceUri(str(FAKES / "sum_score"))


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "home" / "artifacts"  # berth's home: registration never reads it


@pytest.fixture
def registry(db: Database, artifacts: Path) -> Registry:
    store = ArtifactStore(str(artifacts), artifacts.parent / "artifact-copies")
    policy = SourcePolicy(home=artifacts.parent, artifacts=str(artifacts))
    return Registry(db, StepClock(), store, environment_details, policy)


def _register(registry: Registry, name: str, source: SourceUri = SUM_SCORE) -> str:
    made = registry.create_version(name, source, description="", creator="ann", admin=True)
    return str(made.version)


def _serve(db: Database, endpoint: str, name: str, version: str, *, pending: bool = False) -> None:
    served = ServedEntity(f"{name}-{version}", entity_name=name, entity_version=version)
    config = EndpointConfigDoc(1, (served,), (TrafficRoute(served.name, 100),)).to_json()
    with db.transaction() as session:
        session.add(
            EndpointRow(
                id=uuid.uuid4().hex,
                name=endpoint,
                creator="ann",
                created_at=1,
                updated_at=1,
                config=None if pending else config,
                pending_config=config if pending else None,
                ready="NOT_READY",
                config_update="IN_PROGRESS" if pending else "NOT_UPDATING",
            )
        )


def test_model_round_trip(registry: Registry) -> None:
    made = registry.create_model("m", description="d", tags=[ModelTag("team", "ml")], creator="ann")
    assert made.latest_version is None
    assert registry.get_model("m") == made
    assert [m.name for m in registry.list_models()] == ["m"]
    with pytest.raises(AlreadyExists, match="Model 'm' already exists."):
        registry.create_model("m", description="", tags=[], creator="bob")


def test_duplicate_tag_keys_are_refused(registry: Registry) -> None:
    tags = [ModelTag("a", "1"), ModelTag("a", "2")]
    with pytest.raises(InvalidParameter, match="Tag key 'a' is given twice"):
        registry.create_model("m", description="", tags=tags, creator="ann")
    assert registry.list_models() == []


def test_versions_count_up_and_are_never_reused(registry: Registry, artifacts: Path) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    assert [_register(registry, "m") for _ in range(3)] == ["1", "2", "3"]
    registry.delete_version("m", "3")
    registry.delete_version("m", "2")
    assert not (artifacts / "m" / "3").exists()
    assert _register(registry, "m") == "4"
    assert [v.version for v in registry.list_versions("m")] == [1, 4]
    assert registry.get_model("m").latest_version == 4


def test_failed_validation_writes_nothing(
    registry: Registry, artifacts: Path, tmp_path: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    broken = Path(shutil.copytree(FAKES / "sum_score", tmp_path / "broken"))
    (broken / "score.py").write_text("def load_model():\n    pass\n")
    with pytest.raises(InvalidParameter, match="no top-level function predict"):
        _register(registry, "m", SourceUri(str(broken)))
    assert registry.list_versions("m") == []
    assert list(artifacts.iterdir()) == []
    assert _register(registry, "m") == "1"


def test_store_failure_takes_the_placed_artifact_back(
    registry: Registry, db: Database, artifacts: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    _register(registry, "m")
    with db.transaction() as session:  # a row the counter does not know about
        model_id = session.scalar(select(ModelRow.id).where(ModelRow.name == "m"))
        session.add(
            ModelVersionRow(
                model_id=model_id,
                version=2,
                source="x",
                format="score_py",
                status="READY",
                artifact_path="/elsewhere",
                creator="ann",
                created_at=1,
            )
        )
    with pytest.raises(AlreadyExists, match="already has a version 2"):
        _register(registry, "m")
    assert sorted(p.name for p in (artifacts / "m").iterdir()) == ["1"]
    assert [p.name for p in artifacts.iterdir()] == ["m"]


def test_served_versions_and_models_cannot_be_deleted(
    registry: Registry, db: Database, artifacts: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    _register(registry, "m")
    _register(registry, "m")
    _serve(db, "live", "m", "1")
    _serve(db, "rolling", "m", "1", pending=True)
    with pytest.raises(Conflict) as caught:
        registry.delete_version("m", "1")
    assert caught.value.message.startswith(
        "Version 1 of model 'm' is served by endpoint(s) 'live', 'rolling';"
    )
    with pytest.raises(Conflict, match="Model 'm' is served by endpoint\\(s\\) 'live', 'rolling'"):
        registry.delete_model("m")
    assert (artifacts / "m" / "1" / "score.py").exists()
    assert [v.version for v in registry.list_versions("m")] == [1, 2]
    registry.delete_version("m", "2")
    assert [v.version for v in registry.list_versions("m")] == [1]


def test_deleting_a_model_removes_its_versions_and_artifacts(
    registry: Registry, artifacts: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    _register(registry, "m")
    registry.delete_model("m")
    with pytest.raises(NotFound, match="Model 'm' does not exist."):
        registry.list_versions("m")
    assert list(artifacts.iterdir()) == []
    registry.create_model("m", description="", tags=[], creator="ann")
    assert _register(registry, "m") == "1"


def test_unknown_model_is_refused_before_any_copy(registry: Registry, artifacts: Path) -> None:
    with pytest.raises(NotFound, match="Model 'ghost' does not exist."):
        _register(registry, "ghost")
    assert not artifacts.exists() or list(artifacts.iterdir()) == []


def test_a_container_version_is_its_spec_whatever_its_artifact_holds(
    registry: Registry, artifacts: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    spec = {"command": ["python", "-m", "server"], "args": [], "env": [], "ports": []}
    made = registry.create_version(
        "m",
        SUM_SCORE,
        description="",
        creator="ann",
        admin=True,
        container=ContainerVersion(spec, task="llm/v1/chat"),
    )
    assert made.format == "container"
    assert made.details["container_spec"] == spec
    assert made.details["task"] == "llm/v1/chat"
    assert (artifacts / "m" / "1" / "score.py").is_file()  # stored as any folder is


def test_a_container_without_source_gets_an_empty_artifact(
    registry: Registry, artifacts: Path
) -> None:
    registry.create_model("m", description="", tags=[], creator="ann")
    made = registry.create_version(
        "m",
        NoArtifact(),
        description="",
        creator="ann",
        container=ContainerVersion({"command": ["server"]}),
    )
    assert (made.source, made.format) == ("", "container")
    assert "task" not in made.details
    assert made.details["environment"] == {"hash": None, "summary": OWN_ENVIRONMENT}
    assert list((artifacts / "m" / "1").iterdir()) == []


def test_an_image_brings_its_own_environment(tmp_path: Path, registry: Registry) -> None:
    """An MLflow model folder holds a requirements.txt; served by an image, nothing is built."""
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    (folder / "requirements.txt").write_text("six==1.16.0\n")
    registry.create_model("m", description="", tags=[], creator="ann")
    as_process = registry.create_version(
        "m",
        SourceUri(str(folder)),
        description="",
        creator="ann",
        admin=True,
        container=ContainerVersion({"command": ["server"]}),
    )
    assert as_process.details["environment"]["spec"]["requirements"] == ["six==1.16.0"]
    as_image = registry.create_version(
        "m",
        SourceUri(str(folder)),
        description="",
        creator="ann",
        admin=True,
        container=ContainerVersion({"image_uri": "localhost/server:1"}),
    )
    assert as_image.details["environment"] == IMAGE_ENVIRONMENT
