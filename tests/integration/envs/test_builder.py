"""Building environments with real uv: once per spec, atomically, with a readable failure.

These install tiny packages (six) from the package registry; with uv's cache warm each
build takes a fraction of a second.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from berth.envs import BuiltEnv, EnvBuildFailed, EnvSpec, build_env, resolve_spec, runtime_path
from berth.sandbox import Sandbox
from tests.support.envs import OWN, MakeArtifact, write_sdist, write_wheel

pytestmark = pytest.mark.integration

SIX = EnvSpec(OWN, ("six==1.16.0",))


class _Interrupted(Exception):
    """Raised from ``on_line`` to stop a build half-way, as Ctrl-C or a crash would."""


def _python(env: BuiltEnv, code: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env.python), "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env_vars},
        check=False,
    )


def _cache_entries(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if path.name != ".locks")


def test_build_installs_the_spec_and_the_second_call_reuses_it(tmp_path: Path) -> None:
    lines: list[str] = []
    first = build_env(SIX, tmp_path, on_line=lines.append)
    assert first.built and first.path == tmp_path / SIX.hash()
    assert _python(first, "import six; print(six.__version__)").stdout.strip() == "1.16.0"
    assert any("six==1.16.0" in line for line in lines)
    assert _cache_entries(tmp_path) == [SIX.hash(), f"{SIX.hash()}.log"]

    again = build_env(SIX, tmp_path, on_line=lines.append)
    assert again == BuiltEnv(first.hash, first.path, first.python, built=False)


def test_a_different_pin_is_a_different_environment(tmp_path: Path) -> None:
    old = build_env(EnvSpec(OWN, ("six==1.15.0",)), tmp_path)
    new = build_env(SIX, tmp_path)
    assert old.path != new.path
    assert _python(old, "import six; print(six.__version__)").stdout.strip() == "1.15.0"


def test_missing_package_fails_naming_it_and_leaves_only_the_log(tmp_path: Path) -> None:
    spec = EnvSpec(OWN, ("six==1.16.0", "berth-no-such-package-xyz==1.0"))
    with pytest.raises(EnvBuildFailed) as caught:
        build_env(spec, tmp_path)
    failure = caught.value
    assert failure.requirement == "berth-no-such-package-xyz==1.0"
    assert "uv failed installing berth-no-such-package-xyz==1.0" in failure.message
    assert "was not found in the package registry" in failure.message
    assert failure.log == tmp_path / f"{spec.hash()}.log"
    assert "berth-no-such-package-xyz" in failure.log.read_text()
    assert _cache_entries(tmp_path) == [f"{spec.hash()}.log"]


def test_a_package_that_fails_to_build_is_named(make_artifact: MakeArtifact) -> None:
    artifact = make_artifact({"requirements.txt": "./pkgs/broken-1.0.tar.gz\n"})
    write_sdist(artifact / "pkgs" / "broken-1.0.tar.gz", 'raise SystemExit("refusing to build")')
    spec = resolve_spec(artifact, "score_py")
    assert spec is not None
    with pytest.raises(EnvBuildFailed) as caught:
        build_env(spec, artifact.parent / "envs", artifact=artifact)
    assert caught.value.requirement == spec.requirements[0]
    assert caught.value.message.startswith("uv failed installing ./pkgs/broken-1.0.tar.gz")
    assert "refusing to build" in caught.value.message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            EnvSpec(OWN, ("six==1.16.0", "six==1.15.0")),
            "uv failed building the environment (Python "
            f"{OWN}): Because you require six==1.16.0 and six==1.15.0",
        ),
        (EnvSpec("3.99", ("six==1.16.0",)), "uv failed building the environment (Python 3.99)"),
    ],
)
def test_unbuildable_specs_fail_with_uvs_reason(
    tmp_path: Path, spec: EnvSpec, expected: str
) -> None:
    with pytest.raises(EnvBuildFailed) as caught:
        build_env(spec, tmp_path)
    assert caught.value.requirement is None
    assert caught.value.message.startswith(expected)
    assert _cache_entries(tmp_path) == [f"{spec.hash()}.log"]


def test_an_interrupted_build_leaves_nothing_half_made(tmp_path: Path) -> None:
    seen: list[str] = []

    def interrupt_while_installing(line: str) -> None:
        if seen and seen[-1].startswith("$ uv pip install"):
            raise _Interrupted  # uv is running: its first line of output just came
        seen.append(line)

    with pytest.raises(_Interrupted):
        build_env(SIX, tmp_path, on_line=interrupt_while_installing)
    assert _cache_entries(tmp_path) == [f"{SIX.hash()}.log"]
    assert build_env(SIX, tmp_path).built


def test_concurrent_builds_of_one_spec_build_once(tmp_path: Path) -> None:
    spec = EnvSpec(OWN, ("six==1.16.0", "attrs==24.2.0"))
    start = threading.Barrier(3)
    results: list[BuiltEnv] = []

    def build() -> None:
        start.wait()
        results.append(build_env(spec, tmp_path))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.built for result in results) == [False, False, True]
    assert len({result.path for result in results}) == 1
    assert (tmp_path / f"{spec.hash()}.log").read_text().count("$ uv venv") == 1


def test_wheels_from_the_artifact_are_installed(make_artifact: MakeArtifact) -> None:
    artifact = make_artifact({"requirements.txt": "./wheels/tinypkg-0.1-py3-none-any.whl\n"})
    write_wheel(artifact / "wheels" / "tinypkg-0.1-py3-none-any.whl", value="42")
    spec = resolve_spec(artifact, "score_py")
    assert spec is not None
    env = build_env(spec, artifact.parent / "envs", artifact=artifact)
    assert _python(env, "import tinypkg; print(tinypkg.VALUE)").stdout.strip() == "42"


def test_runtime_runs_in_a_model_env_without_berths_server_packages(tmp_path: Path) -> None:
    env = build_env(SIX, tmp_path)
    path = str(runtime_path(tmp_path))
    help_text = subprocess.run(
        [str(env.python), "-m", "berth.runtime", "--help"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path},
        check=True,
    ).stdout
    assert "--artifact" in help_text
    for module in ("fastapi", "sqlalchemy", "pydantic"):
        found = _python(env, f"import {module}", PYTHONPATH=path)
        assert f"No module named '{module}'" in found.stderr


def test_a_build_that_fails_before_uv_runs_says_why_in_its_log(tmp_path: Path) -> None:
    """build-logs must explain a failure even when there is no uv output to show."""
    spec = EnvSpec(python="3.4", requirements=("six==1.16.0",))
    sandbox = Sandbox(tmp_path / "boxes")
    with pytest.raises(EnvBuildFailed) as failed:
        build_env(spec, tmp_path / "envs", sandbox=sandbox)
    assert "Python 3.4 is not installed" in failed.value.message
    log = failed.value.log.read_text()
    assert "# failed: no Python 3.4 is installed here" in log
    assert "$ uv" not in log
