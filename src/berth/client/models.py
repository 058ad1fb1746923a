"""The models resource of the SDK: ``/api/2.0/models`` and their versions."""

from __future__ import annotations

import functools
import json
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from berth.client.transport import ApiError, Transport

JsonObject = dict[str, Any]
JsonObjects = list[JsonObject]

BASE = "/api/2.0/models"
OPTIMIZATION_INFO = "/api/2.0/serving-endpoints/get-model-optimization-info"
GARDEN = "/api/2.0/berth/garden"
GARDEN_TIMEOUT_S = 1800.0
"""A garden registration may first download its package's wheel."""
UPLOAD_FIELD = "file"
GGUF_SUFFIX = ".gguf"
_THIS_MACHINE = frozenset({"localhost", "127.0.0.1", "::1"})
CALIBRATION_TIMEOUT_S = 900.0
"""A first calibration runs the model for a while before the answer comes."""


class ModelsApi:
    """Register models and their versions, list, read and delete them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> JsonObject:
        """Create a model; answers it as ``{name, description, tags, creator, ...}``."""
        body: JsonObject = {"name": name, "description": description}
        if tags:
            body["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
        return self._inner("POST", BASE, "model", json=body)

    def get(self, name: str) -> JsonObject:
        return self._inner("GET", _path(name), "model")

    def list(self) -> JsonObjects:
        models: JsonObjects = self._t.request("GET", BASE).get("models", [])
        return models

    def delete(self, name: str) -> None:
        self._t.request("DELETE", _path(name))

    def create_version(
        self,
        name: str,
        source: str | None = None,
        archive: Path | None = None,
        description: str = "",
        build_env: bool = False,
        container_spec: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> JsonObject:
        """Register a version from ``source`` (a path or URI the server reads) or ``archive``.

        ``archive`` is a file to upload (a ``.tar.gz``/``.tgz``/``.zip``, or a ``.gguf``
        model), or a folder, which is packed into a ``.tar.gz`` first. ``build_env`` builds
        its environment before answering. ``container_spec`` (Vertex's ``ModelContainerSpec``,
        snake_case or camelCase) makes the version a custom container, which needs neither
        ``source`` nor ``archive``; ``task`` (``llm/v1/chat``, ``llm/v1/completions`` or
        ``llm/v1/embeddings``) says which OpenAI routes its server answers.
        """
        params = {"build_env": "true"} if build_env else None
        if source is not None and archive is not None:
            raise ValueError("give at most one of source= and archive=")
        if source is None and archive is None and container_spec is None:
            raise ValueError("give source=, archive= or container_spec=")
        container = _container_fields(container_spec, task)
        if archive is None:
            body: JsonObject = {"description": description, **container}
            if source is not None:
                body["source"] = source
            return self._inner(
                "POST", _path(name, "versions"), "model_version", json=body, params=params
            )
        form = {"description": description}
        form.update({key: _form_value(value) for key, value in container.items()})
        if archive.is_dir():
            with tempfile.TemporaryDirectory(prefix="berth-pack-") as work:
                return self._upload(name, _pack(archive, Path(work)), form, params)
        return self._upload(name, archive, form, params)

    def register(
        self,
        name: str,
        path: Path | None = None,
        description: str = "",
        upload: bool = False,
        build_env: bool = False,
        container_spec: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> JsonObject:
        """Create the model if it is missing, then register ``path`` as its next version.

        A folder or a ``.gguf`` file is sent as a path when the server runs on this machine,
        so it reads it in place; otherwise, with ``upload``, or when the server may not read
        that path for this caller, it is uploaded (a folder packed first). Any other file is
        uploaded as an archive. ``description`` goes to the version, and to the model if made
        here; a model made here is deleted again if its first version is refused. With
        ``container_spec`` (and ``task``) the version is a custom container, and ``path`` may
        be left out: its artifact is then empty.
        """
        created = self._create_if_missing(name, description)
        send = functools.partial(
            self.create_version,
            name,
            description=description,
            build_env=build_env,
            container_spec=container_spec,
            task=task,
        )
        try:
            if path is None:
                return send()
            path = path.expanduser().resolve()
            local = urlsplit(self._t.host).hostname in _THIS_MACHINE
            if (path.is_dir() or path.suffix == GGUF_SUFFIX) and local and not upload:
                try:
                    return send(source=str(path))
                except ApiError as exc:
                    if exc.error_code != "PERMISSION_DENIED":
                        raise
                    # The server may not read this path for this caller: send its contents.
            return send(archive=path)
        except ApiError:
            if created:
                self.delete(name)
            raise

    def list_versions(self, name: str) -> JsonObjects:
        versions: JsonObjects = self._t.request("GET", _path(name, "versions")).get(
            "model_versions", []
        )
        return versions

    def get_version(self, name: str, version: str | int) -> JsonObject:
        return self._inner("GET", _path(name, "versions", str(version)), "model_version")

    def delete_version(self, name: str, version: str | int) -> None:
        self._t.request("DELETE", _path(name, "versions", str(version)))

    def optimization_info(self, name: str, version: str | int) -> JsonObject:
        """Databricks' ``get-model-optimization-info``: ``{"optimizable", "model_type",
        "throughput_chunk_size", "calibration"}`` for an open LLM, ``{"optimizable": false}``
        otherwise. A version never calibrated on the server's host is calibrated first,
        which takes tens of seconds."""
        parts = (OPTIMIZATION_INFO, quote(name, safe=""), quote(str(version), safe=""))
        answer: JsonObject = self._t.request("GET", "/".join(parts), timeout=CALIBRATION_TIMEOUT_S)
        return answer

    def calibrate(self, name: str, version: str | int) -> JsonObject:
        """Measure the version's throughput chunk again; answers the run's progress at once
        (``state``, ``phase``, ``message``, ``fraction``), to poll with ``calibration``."""
        answer: JsonObject = self._t.request(
            "POST", _path(name, "versions", str(version), "calibration")
        )
        return answer

    def calibration(self, name: str, version: str | int) -> JsonObject:
        """The calibration going, or the last one: with its result (``calibration``: the
        chunk, how and when it was measured) once ``state`` is ``DONE``."""
        answer: JsonObject = self._t.request(
            "GET", _path(name, "versions", str(version), "calibration")
        )
        return answer

    def garden(self) -> JsonObjects:
        """The model garden: open models that a package ships, each with ``installed``
        (whether the server has the package already)."""
        models: JsonObjects = self._t.request("GET", GARDEN).get("models", [])
        return models

    def register_from_garden(
        self,
        name: str,
        model_name: str | None = None,
        description: str = "",
        timeout_s: float = GARDEN_TIMEOUT_S,
    ) -> JsonObject:
        """Register garden model ``name`` as the next version of ``model_name`` (default:
        ``name``), which the server makes if missing; answers the version. The server
        installs the package's wheel first where it is not installed."""
        body: JsonObject = {"description": description}
        if model_name is not None:
            body["model_name"] = model_name
        path = f"{GARDEN}/{quote(name, safe='')}/register"
        return self._inner("POST", path, "model_version", json=body, timeout=timeout_s)

    def _create_if_missing(self, name: str, description: str) -> bool:
        try:
            self.create(name, description=description)
        except ApiError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return False
        return True

    def _upload(
        self, name: str, archive: Path, form: dict[str, str], params: dict[str, str] | None
    ) -> JsonObject:
        with archive.open("rb") as fh:
            return self._inner(
                "POST",
                _path(name, "versions"),
                "model_version",
                files={UPLOAD_FIELD: (archive.name, fh, "application/octet-stream")},
                data=form,
                params=params,
            )

    def _inner(self, method: str, path: str, key: str, **kwargs: Any) -> JsonObject:
        body = self._t.request(method, path, **kwargs)
        inner = body.get(key) if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise ApiError("INTERNAL_ERROR", f"{method} {path} answered no '{key}' object", 500)
        return inner


def _container_fields(spec: Mapping[str, Any] | None, task: str | None) -> JsonObject:
    """The body fields of a custom container; the server refuses a task without a spec."""
    fields: JsonObject = {}
    if spec is not None:
        fields["container_spec"] = dict(spec)
    if task is not None:
        fields["task"] = task
    return fields


def _form_value(value: Any) -> str:
    """An upload's form fields are text: the spec goes as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _pack(folder: Path, work: Path) -> Path:
    """``folder`` as ``<name>.tar.gz`` in ``work``, links followed; the server unwraps it."""
    archive = work / f"{folder.name or 'model'}.tar.gz"
    with tarfile.open(archive, "w:gz", dereference=True) as tar:
        tar.add(folder, arcname=folder.name or "model")
    return archive


def _path(name: str, *rest: str) -> str:
    return "/".join([BASE, quote(name, safe=""), *(quote(part, safe="") for part in rest)])
