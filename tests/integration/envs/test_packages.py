"""Installing one package's wheel for the model garden with real uv: the wheel alone, once,
never a source build; from a local index standing in for PyPI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.core.errors import Unavailable
from berth.envs import install_package
from berth.sandbox import Sandbox
from tests.support.envs import write_sdist
from tests.support.wheels import package_wheel, project, wheel_index

pytestmark = pytest.mark.integration

WEIGHTS = {"weights/model.bin": b"\x00\x01\x02"}


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package index served over HTTP, which uv reads instead of PyPI."""
    folder = tmp_path / "index"
    folder.mkdir()
    with wheel_index(folder) as url:
        monkeypatch.setenv("UV_DEFAULT_INDEX", url)
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
        yield folder


def test_the_wheel_is_installed_alone_and_once(index: Path, tmp_path: Path) -> None:
    package_wheel(index, "berth-test-weights", "1.0", WEIGHTS, requires="berth-no-such-dep")
    target = tmp_path / "garden" / "berth-test-weights-1.0"
    install_package("berth-test-weights==1.0", target, envs_root=tmp_path / "envs", sandbox=None)
    assert (target / "berth_test_weights" / "weights" / "model.bin").read_bytes() == b"\x00\x01\x02"
    assert sorted(p.name for p in target.iterdir() if p.name != ".lock") == [  # uv's
        "berth_test_weights",
        "berth_test_weights-1.0.dist-info",
    ]
    shutil.rmtree(index / "berth-test-weights")  # were uv run again, it would find nothing now
    install_package("berth-test-weights==1.0", target, envs_root=tmp_path / "envs", sandbox=None)
    assert (target / "berth_test_weights" / "weights" / "model.bin").is_file()


def test_a_source_archive_is_never_built(index: Path, tmp_path: Path) -> None:
    marker = tmp_path / "setup-ran"
    write_sdist(
        project(index, "broken") / "broken-1.0.tar.gz", f"open({str(marker)!r}, 'w').close()"
    )
    garden = tmp_path / "garden"
    with pytest.raises(Unavailable) as caught:
        install_package(
            "broken==1.0", garden / "broken-1.0", envs_root=tmp_path / "envs", sandbox=None
        )
    assert caught.value.message.startswith("uv could not install the wheel of broken==1.0")
    assert "uv said:\n" in caught.value.message
    assert not marker.exists()
    assert [p.name for p in garden.iterdir()] == [".broken-1.0.lock"]


def test_the_install_runs_in_the_builders_box(index: Path, tmp_path: Path, bubblewrap: str) -> None:
    """uv in the box reads the index it is given (its URL passed in), into berth's cache."""
    package_wheel(index, "berth-test-weights", "1.0", WEIGHTS)
    sandbox = Sandbox(tmp_path / "boxes", mode="bwrap", pass_env=("UV_DEFAULT_INDEX",))
    target = tmp_path / "garden" / "berth-test-weights-1.0"
    envs = tmp_path / "envs"
    install_package("berth-test-weights==1.0", target, envs_root=envs, sandbox=sandbox)
    assert (target / "berth_test_weights" / "weights" / "model.bin").is_file()
    assert any((envs / ".uv-cache").iterdir())
