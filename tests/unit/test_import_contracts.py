"""Two import contracts are allow-lists written as their complement (import-linter has no
allow-list type): what the runtime and the SDK may import is what their ``forbidden_modules``
leave out. These tests fail when a berth package, or a third-party package berth imports, is
missing from those lists, so a new one cannot slip past ``lint-imports``."""

from __future__ import annotations

import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# What each source may import besides the standard library and itself.
ALLOWED = {
    # MLflow models load through MLflow, open LLMs through an engine: xllamacpp on CPUs, vLLM
    # (a child process, never imported) or transformers on GPUs
    "berth.runtime": {"berth.core", "mlflow", "xllamacpp", "torch", "transformers"},
    "berth.client": {"berth.core"},
}


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("berth", include_external_packages=True, cache_dir=None)


def contract(source: str) -> dict[str, Any]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    allow_lists = [
        found
        for found in config["contracts"]
        if found["type"] == "forbidden" and found["source_modules"] == [source]
    ]
    assert len(allow_lists) == 1, f"one forbidden contract has source_modules = [{source!r}]"
    return allow_lists[0]


def berth_packages() -> set[str]:
    return set(graph().find_children("berth"))


def third_party() -> set[str]:
    """Top-level packages berth imports that are neither berth nor the standard library."""
    top = {module for module in graph().modules if "." not in module and module != "berth"}
    return top - set(sys.stdlib_module_names)


@pytest.mark.parametrize("source", sorted(ALLOWED))
def test_every_berth_package_not_allowed_is_forbidden(source: str) -> None:
    forbidden = set(contract(source)["forbidden_modules"])
    assert berth_packages() - {source} - ALLOWED[source] - forbidden == set()


def test_every_third_party_package_the_runtime_does_not_need_is_forbidden() -> None:
    forbidden = set(contract("berth.runtime")["forbidden_modules"])
    assert third_party() - ALLOWED["berth.runtime"] - forbidden == set()


@pytest.mark.parametrize("source", sorted(ALLOWED))
def test_indirect_imports_count(source: str) -> None:
    assert not contract(source).get("allow_indirect_imports", False)


def test_every_berth_module_but_the_ray_backend_is_kept_from_ray() -> None:
    """The contract lists packages, and the backends package module by module (its ``ray``
    module alone may import Ray)."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (ray_only,) = [c for c in config["contracts"] if c.get("forbidden_modules") == ["ray"]]
    listed = set(ray_only["source_modules"])
    backends = set(graph().find_children("berth.backends"))
    assert (berth_packages() - {"berth.backends"}) | backends - {"berth.backends.ray"} == listed
    assert ray_only["ignore_imports"] == ["berth.backends.ray -> ray"]
