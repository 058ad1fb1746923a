"""Registration never reads the artifact store, whether a shared directory or a URL: a caller
could otherwise register another model's artifact (with the server's credentials) as theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.core.errors import PermissionDenied
from berth.registry.source_policy import SourcePolicy

HOME = Path("/nonexistent/berth-home")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://models/berth/other/3",
        "s3://models/berth",
        "S3://Models/berth/other/3",
        "s3://models/team/../berth/other/3",
        "s3://models//berth/other/3",
    ],
)
def test_a_url_inside_the_artifact_store_is_refused_even_to_admins(uri: str) -> None:
    policy = SourcePolicy(home=HOME, artifacts="s3://models/berth")
    with pytest.raises(PermissionDenied, match="inside berth's artifact store"):
        policy.check_remote(uri, "source")


@pytest.mark.parametrize(
    "uri", ["s3://models/berth-old/m/1", "s3://other/berth/m/1", "gs://models/berth/m/1"]
)
def test_a_url_beside_the_artifact_store_is_read(uri: str) -> None:
    policy = SourcePolicy(
        home=HOME, artifacts="s3://models/berth", protocols=frozenset({"s3", "gs"})
    )
    policy.check_remote(uri, "source")


def test_a_path_inside_a_shared_artifact_directory_is_refused_even_through_a_link(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared" / "artifacts"
    (shared / "other" / "3").mkdir(parents=True)
    link = tmp_path / "innocent"
    link.symlink_to(shared / "other" / "3")
    policy = SourcePolicy(home=HOME, artifacts=str(shared))
    for path in (shared / "other" / "3", link):
        with pytest.raises(PermissionDenied, match="inside berth's artifact store"):
            policy.check_path(path, admin=True, label="source")
    policy.check_path(tmp_path, admin=True, label="source")
