"""MLflow's deployment target ``berth``: ``mlflow deployments ... -t berth`` and
``mlflow.deployments.get_deploy_client("berth")``, through the SDK.

MLflow finds this module through the ``mlflow.deployments`` entry point and loads it itself, so
it may import mlflow while berth does not depend on it. MLflow wants exactly one subclass of
``BaseDeploymentClient`` among the module's names (imported ones count), ``run_local`` and
``target_help``.

Where berth is: the target ``berth`` connects to ``BERTH_HOST`` (default
``http://127.0.0.1:8000``), as the SDK and the CLI do; ``berth://HOST:PORT`` names a host
reached over plain HTTP instead, for a server on this machine or a trusted network (an HTTPS
server or one behind a path prefix is named by ``BERTH_HOST``). The token is always
``BERTH_TOKEN``: a token in the target URI would end up in shell histories and logs.

What a deployment is: a serving endpoint of the same name serving one model version, as on
Databricks. The ``endpoint`` methods are the serving-endpoints API as it is (Databricks'
JSON shapes, no waiting); the deployment methods register the model when given a path, build
the endpoint's config from a few keys, and wait until the endpoint is ready.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    NOT_IMPLEMENTED,
    ErrorCode,
)

from berth.client.client import BerthClient
from berth.client.transport import ApiError

Json = dict[str, Any]

SCHEME = "berth"
MODELS_URI = "models:/"
FAILED_UPDATES = ("UPDATE_FAILED", "UPDATE_CANCELED")
WAIT_S = 1200.0
"""How long a deployment waits for its endpoint, as ``berth endpoints create --wait``."""

ENTITY_KEYS = ("workload_size", "workload_type", "scale_to_zero_enabled")
"""Config keys that set the served entity's field of the same name."""
BOOLEAN_KEYS = frozenset({"scale_to_zero_enabled", "wait"})
CONFIG_KEYS = (*ENTITY_KEYS, "endpoint_config", "wait")

HELP = f"""\
berth: deploys models as the serving endpoints of a berth server.

Target URI
  berth                  the server at BERTH_HOST (default http://127.0.0.1:8000)
  berth://HOST:PORT      the server at http://HOST:PORT (use BERTH_HOST for https)
  The token is BERTH_TOKEN's (`berth tokens create`, or the admin token of `berth serve`).

Deployments
  A deployment is the serving endpoint of the same name, serving one model version.
  --model-uri (-m):
    models:/NAME/VERSION   a version registered in berth (`berth models register`);
                           models:/NAME/latest is its latest version
    PATH                   a folder (an MLflow model, a score.py folder, ...), an archive
                           or a .gguf file: registered as the next version of the model
                           named like the deployment, then deployed
  --flavor: leave it out; berth serves each artifact as its format says (mlflow, score_py,
  gguf, ...), which create and update report as the deployment's flavor.
  --config (-C) KEY=VALUE:
    workload_size          Small, Medium or Large (4, 8-16 or 16-64 concurrent requests)
    workload_type          CPU, or a GPU type the server offers
    scale_to_zero_enabled  true or false
    endpoint_config        JSON of an EndpointCoreConfigInput (served_entities,
                           traffic_config, auto_capture_config); its served entities serve
                           the model of --model-uri unless they name another, and take the
                           keys above unless they set them
    wait                   true (default): wait until the endpoint is ready, at most
                           {WAIT_S:.0f} s; false: answer once the update has started
  update keeps the served model's workload keys unless given; without --model-uri it serves
  the model served now. delete deletes the endpoint; the registered versions stay.

Endpoints (create-endpoint, update-endpoint, ...)
  The serving-endpoints API in Databricks' JSON shapes: create_endpoint(name, config) takes an
  EndpointCoreConfigInput, or a create payload ({{"config": ..., "tags": ..., ...}}); a -C
  value that is a JSON object or list is read as JSON.

predict sends a dict as the request body as it is (any MLflow scoring format, or an
OpenAI-style body for chat models) and a pandas DataFrame as dataframe_split; predict_stream
streams chat and completion models. explain is not offered. run-local: see `berth serve`.
"""


def run_local(
    target: str,
    name: str,
    model_uri: str,
    flavor: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """berth has no mode apart from its server: ``berth serve`` on this machine *is* the local
    deployment, and serving one model outside it would skip the sandbox, the environment
    builds and the gateway that make a deployment what it is. So this says how instead."""
    raise MlflowException(
        f"berth does not run models outside its server. Start one on this machine with "
        f"`berth serve` (`berth serve --demo` adds a demo endpoint), then deploy to it: "
        f"`mlflow deployments create -t berth --name {name} -m {model_uri}`.",
        error_code=NOT_IMPLEMENTED,
    )


def target_help() -> str:
    return HELP


class BerthDeploymentClient(BaseDeploymentClient):
    """Deployments and endpoints of one berth server, through ``berth.client.BerthClient``."""

    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)  # type: ignore[no-untyped-call]  # MLflow's is untyped
        self._host = host_of(target_uri)

    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> Json:
        """Serve ``model_uri`` on a new endpoint ``name``; waits until it is ready unless
        ``wait=false``."""
        options = _options(config, flavor, name, endpoint)
        with self._session() as berth:
            model, version, registered = _resolve(berth, name, model_uri)
            spec = {"name": name, "config": _endpoint_config(model, version, {}, options)}
            with _unregistered_if_refused(berth, model, version, registered):
                berth.endpoints.create(spec)
            return _finish(berth, name, model, version, options)

    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> Json:
        """Serve ``model_uri`` (or the model served now) with the config keys given; the
        served entity's other workload keys stay as they are."""
        options = _options(config, flavor, name, endpoint)
        if model_uri is None and not set(options) - {"wait"}:
            raise MlflowException(
                f"Nothing to update on deployment '{name}': give a model URI or config keys.",
                error_code=INVALID_PARAMETER_VALUE,
            )
        with self._session() as berth:
            current = _served_entity(berth.endpoints.get(name))
            kept = {key: current[key] for key in ENTITY_KEYS if key in current}
            if model_uri is None:
                model, version = current["entity_name"], str(current["entity_version"])
                registered = False
            else:
                model, version, registered = _resolve(berth, name, model_uri)
            config = _endpoint_config(model, version, kept, options)
            with _unregistered_if_refused(berth, model, version, registered):
                berth.endpoints.update_config(name, config)
            return _finish(berth, name, model, version, options)

    def delete_deployment(
        self, name: str, config: Mapping[str, Any] | None = None, endpoint: str | None = None
    ) -> None:
        _same_name(name, endpoint)
        with self._session() as berth:
            berth.endpoints.delete(name)

    def list_deployments(self, endpoint: str | None = None) -> list[Json]:
        """Every endpoint, or with ``endpoint`` the one deployment it is."""
        with self._session() as berth:
            if endpoint is not None:
                return [berth.endpoints.get(endpoint)]
            return berth.endpoints.list()

    def get_deployment(self, name: str, endpoint: str | None = None) -> Json:
        _same_name(name, endpoint)
        with self._session() as berth:
            return berth.endpoints.get(name)

    def predict(
        self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None
    ) -> PredictionsResponse:
        name = _target_name(deployment_name, endpoint)
        with self._session() as berth:
            return PredictionsResponse(berth.endpoints.query(name, _request_body(inputs)))

    def predict_stream(
        self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None
    ) -> Iterator[Json]:
        """The chunks of a chat or completion model's answer as they come."""
        name = _target_name(deployment_name, endpoint)
        with self._session() as berth:
            yield from berth.endpoints.query_stream(name, _request_body(inputs))

    def explain(
        self, deployment_name: str | None = None, df: Any = None, endpoint: str | None = None
    ) -> Any:
        raise MlflowException(
            "berth does not explain predictions: its endpoints answer predictions only. "
            "Compute explanations client-side (e.g. with SHAP over `predict`).",
            error_code=NOT_IMPLEMENTED,
        )

    def create_endpoint(self, name: str, config: Mapping[str, Any] | None = None) -> Json:
        """``config`` is an EndpointCoreConfigInput or a whole create payload (with ``config``,
        ``tags``, ``rate_limits``, ...). Answers at once, with the update in progress."""
        given = _json_values(config or {})
        spec = {**given, "name": name} if "config" in given else {"name": name, "config": given}
        with self._session() as berth:
            return berth.endpoints.create(spec)

    def update_endpoint(self, endpoint: str, config: Mapping[str, Any] | None = None) -> Json:
        """Start a config update from an EndpointCoreConfigInput; answers at once."""
        with self._session() as berth:
            return berth.endpoints.update_config(endpoint, _json_values(config or {}))

    def delete_endpoint(self, endpoint: str) -> None:
        with self._session() as berth:
            berth.endpoints.delete(endpoint)

    def list_endpoints(self) -> list[Json]:
        with self._session() as berth:
            return berth.endpoints.list()

    def get_endpoint(self, endpoint: str) -> Json:
        with self._session() as berth:
            return berth.endpoints.get(endpoint)

    @contextmanager
    def _session(self) -> Iterator[BerthClient]:
        """A client for one call, its errors as MLflow's: MLflow never closes a deployment
        client, so a client kept in it would leave its connections open."""
        with BerthClient(host=self._host) as berth, _as_mlflow_errors():
            yield berth


def host_of(target_uri: str) -> str | None:
    """The server's URL a target URI names; ``None`` for the SDK's (``BERTH_HOST``)."""
    parts = urlsplit(target_uri)
    if target_uri == SCHEME or (parts.scheme == SCHEME and not parts.netloc and not parts.path):
        return None
    plain = not (parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc)
    if parts.scheme == SCHEME and parts.netloc and plain:
        return f"http://{parts.netloc}"
    raise _invalid(
        f"Target '{target_uri}' is not 'berth' or 'berth://HOST:PORT'. Name other servers "
        "with BERTH_HOST (and the token with BERTH_TOKEN), and use the target 'berth'."
    )


def _resolve(berth: BerthClient, name: str, model_uri: str) -> tuple[str, str, bool]:
    """The model and version ``model_uri`` names, and whether it was registered here."""
    if model_uri.startswith(MODELS_URI):
        model, _, version = model_uri.removeprefix(MODELS_URI).partition("/")
        if not model or not version or "/" in version:
            raise _invalid(f"'{model_uri}' is not models:/NAME/VERSION.")
        if version == "latest":
            latest = berth.models.get(model).get("latest_version")
            if latest is None:
                raise _invalid(f"Model '{model}' has no version to deploy.")
            return model, str(latest), False
        return model, berth.models.get_version(model, version)["version"], False
    path = Path(model_uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise _invalid(
            f"'{model_uri}' is neither models:/NAME/VERSION nor a local path. Register "
            "other URIs' artifacts first (`mlflow artifacts download -u URI`)."
        )
    version = berth.models.register(name, path)["version"]
    return name, str(version), True


@contextmanager
def _unregistered_if_refused(
    berth: BerthClient, model: str, version: str, registered: bool
) -> Iterator[None]:
    """A version registered for an endpoint that refuses it is deleted again, so a refused
    create or update leaves the registry as it was."""
    try:
        yield
    except ApiError:
        if registered:
            berth.models.delete_version(model, version)
        raise


def _finish(
    berth: BerthClient, name: str, model: str, version: str, options: Mapping[str, Any]
) -> Json:
    """The deployment once ready (or as it is, with ``wait=false``), named as MLflow's
    CLI prints it; a failed update raises with what its served entities said."""
    if options.get("wait", True):
        try:
            found = berth.endpoints.wait(name, timeout_s=WAIT_S)
        except TimeoutError as exc:
            raise MlflowException(
                f"Deployment '{name}' was not ready within {WAIT_S:.0f} s; it goes on in "
                f"the background (`berth endpoints get {name}`)."
            ) from exc
        _raise_if_failed(found)
    else:
        found = berth.endpoints.get(name)
    flavor = berth.models.get_version(model, version)["format"]
    return {**found, "name": name, "flavor": flavor}


@contextmanager
def _as_mlflow_errors() -> Iterator[None]:
    """berth's error answers as ``MlflowException``: its message and its error code (MLflow
    knows all of berth's; an external provider's own, mid-stream, is ``INTERNAL_ERROR``)."""
    try:
        yield
    except ApiError as exc:
        try:
            code = ErrorCode.Value(exc.error_code)
        except ValueError:
            code = INTERNAL_ERROR
        raise MlflowException(exc.message, error_code=code) from exc


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _options(
    config: Mapping[str, Any] | None, flavor: str | None, name: str, endpoint: str | None
) -> Json:
    """The deployment's config keys, checked and typed (the CLI passes each as a string)."""
    _same_name(name, endpoint)
    if flavor is not None:
        raise _invalid(
            f"berth serves each model as its artifact's format says; leave out flavor '{flavor}'."
        )
    options = dict(config or {})
    unknown = sorted(set(options) - set(CONFIG_KEYS))
    if unknown:
        raise _invalid(
            f"Unknown config key(s) {', '.join(unknown)}; berth's are {', '.join(CONFIG_KEYS)} "
            "(`mlflow deployments help -t berth`)."
        )
    for key in BOOLEAN_KEYS & set(options):
        options[key] = _boolean(key, options[key])
    if "endpoint_config" in options:
        options["endpoint_config"] = _json_object("endpoint_config", options["endpoint_config"])
    return options


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise _invalid(f"Config key {key} is true or false, not '{value}'.")
    return text == "true"


def _json_object(key: str, value: Any) -> Json:
    try:
        found = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as exc:
        raise _invalid(f"Config key {key} is not valid JSON: {exc}.") from exc
    if not isinstance(found, dict):
        raise _invalid(f"Config key {key} is a JSON object, not {type(found).__name__}.")
    return found


def _json_values(config: Mapping[str, Any]) -> Json:
    """``config`` with each string that holds a JSON object or list read as JSON, since MLflow's
    CLI passes every ``-C key=value`` as a string."""
    read: Json = {}
    for key, value in config.items():
        if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise _invalid(f"Config key {key} is not valid JSON: {exc}.") from exc
        read[key] = value
    return read


def _endpoint_config(model: str, version: str, kept: Json, options: Mapping[str, Any]) -> Json:
    """The EndpointCoreConfigInput serving ``model`` ``version``: ``endpoint_config`` (or
    nothing) with each served entity that names no model of its own serving this one, and
    each entity but external models taking the entity keys (kept ones, then given ones) that
    it does not set itself."""
    config = dict(options.get("endpoint_config", {}))
    workload = {**kept, **{key: options[key] for key in ENTITY_KEYS if key in options}}
    this_model = {"entity_name": model, "entity_version": version}
    entities = config.get("served_entities") or [{}]
    config["served_entities"] = [
        entity
        if "external_model" in entity
        else {**workload, **({} if "entity_name" in entity else this_model), **entity}
        for entity in entities
    ]
    return config


def _served_entity(endpoint: Json) -> Json:
    """The served entity an update starts from: the pending config's, else the current's."""
    config = endpoint.get("pending_config") or endpoint.get("config") or {}
    entities = config.get("served_entities") or []
    if not entities or "entity_name" not in entities[0]:
        raise _invalid(
            f"Endpoint '{endpoint.get('name')}' serves no registered model to update; use "
            "update_endpoint for its config."
        )
    first: Json = entities[0]
    return first


def _raise_if_failed(endpoint: Json) -> None:
    outcome = endpoint.get("state", {}).get("config_update")
    if outcome not in FAILED_UPDATES:
        return
    entities = (endpoint.get("pending_config") or {}).get("served_entities") or []
    said = [
        f"{entity.get('name')}: {entity['state']['deployment_state_message']}"
        for entity in entities
        if entity.get("state", {}).get("deployment_state_message")
    ]
    raise MlflowException(
        f"Deployment '{endpoint.get('name')}' did not become ready ({outcome})"
        + (": " + "; ".join(said) if said else "")
        + f". Its history: `berth endpoints events {endpoint.get('name')}`."
    )


def _same_name(name: str, endpoint: str | None) -> None:
    if endpoint is not None and endpoint != name:
        raise _invalid(
            f"A berth deployment is the endpoint of the same name: deployment '{name}' is "
            f"endpoint '{name}', not '{endpoint}'. Leave the endpoint out."
        )


def _target_name(deployment_name: str | None, endpoint: str | None) -> str:
    if deployment_name is not None:
        _same_name(deployment_name, endpoint)
        return deployment_name
    if endpoint is None:
        raise _invalid("Name the deployment (or its endpoint) to query.")
    return endpoint


def _request_body(inputs: Any) -> Json:
    """A dict as it is; a pandas DataFrame (MLflow's CLI reads ``--input-path`` into one) as
    ``dataframe_split``, without its index, as MLflow's scoring server reads it."""
    if isinstance(inputs, Mapping):
        return dict(inputs)
    to_dict = getattr(inputs, "to_dict", None)
    if callable(to_dict):
        split = to_dict(orient="split")
        return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    raise _invalid(
        f"Inputs are a dict (a scoring request's JSON) or a pandas DataFrame, not "
        f"{type(inputs).__name__}."
    )
