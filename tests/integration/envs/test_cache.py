"""Listing and pruning built environments: what is in use always stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from berth.envs import BuiltEnv, EnvSpec, build_env, list_envs, mark_used, prune
from berth.envs.cache import build_lock
from tests.support.envs import OWN

pytestmark = pytest.mark.integration

OLD = EnvSpec(OWN, ("six==1.15.0",))
NEW = EnvSpec(OWN, ("six==1.16.0",))
TWO_DAYS_S = 2 * 24 * 3600


@pytest.fixture
def built(tmp_path: Path) -> tuple[BuiltEnv, BuiltEnv]:
    return build_env(OLD, tmp_path), build_env(NEW, tmp_path)


def _age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_list_describes_each_environment(tmp_path: Path, built: tuple[BuiltEnv, ...]) -> None:
    infos = {info.hash: info for info in list_envs(tmp_path)}
    assert set(infos) == {env.hash for env in built}
    old = infos[built[0].hash]
    assert old.spec == OLD and old.python == built[0].python and old.path == built[0].path
    assert old.size_bytes > 10_000
    assert 0 < old.created_ms <= old.last_used_ms


def test_mark_used_moves_last_used(tmp_path: Path, built: tuple[BuiltEnv, ...]) -> None:
    env = built[0]
    _age(env.path / ".berth-last-used", TWO_DAYS_S)
    (before,) = (info for info in list_envs(tmp_path) if info.hash == env.hash)
    mark_used(tmp_path, env.hash)
    (after,) = (info for info in list_envs(tmp_path) if info.hash == env.hash)
    assert after.last_used_ms > before.last_used_ms
    assert list_envs(tmp_path)[0].hash == env.hash


def test_prune_removes_only_what_is_not_kept(tmp_path: Path, built: tuple[BuiltEnv, ...]) -> None:
    old, new = built
    removed = prune(tmp_path, keep={new.hash})
    assert [info.hash for info in removed] == [old.hash]
    assert not old.path.exists() and not (tmp_path / f"{old.hash}.log").exists()
    assert [info.hash for info in list_envs(tmp_path)] == [new.hash]
    assert build_env(NEW, tmp_path).built is False


def test_prune_leaves_an_environment_someone_holds_the_lock_of(
    tmp_path: Path, built: tuple[BuiltEnv, ...]
) -> None:
    with build_lock(tmp_path, built[0].hash):
        removed = prune(tmp_path, keep=set())
    assert [info.hash for info in removed] == [built[1].hash]
    assert built[0].path.is_dir()


def test_prune_clears_day_old_leftovers_only(tmp_path: Path, built: tuple[BuiltEnv, ...]) -> None:
    stale_tmp = tmp_path / ".tmp-crashed-build"
    (stale_tmp / "bin").mkdir(parents=True)
    fresh_tmp = tmp_path / ".tmp-building-now"
    fresh_tmp.mkdir()
    failed_log = tmp_path / f"{'f' * 64}.log"
    failed_log.write_text("error: No solution found\n")
    recent_failure = tmp_path / f"{'e' * 64}.log"
    recent_failure.write_text("error: No solution found\n")
    _age(stale_tmp, TWO_DAYS_S)
    _age(failed_log, TWO_DAYS_S)
    _age(tmp_path / f"{built[0].hash}.log", TWO_DAYS_S)

    assert prune(tmp_path, keep={env.hash for env in built}) == []
    assert not stale_tmp.exists() and not failed_log.exists()
    assert fresh_tmp.is_dir() and recent_failure.is_file()
    assert (tmp_path / f"{built[0].hash}.log").is_file()
