"""Loading a model artifact and calling it: OCI ``score.py`` and MLflow pyfunc models."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Protocol


class ModelInputError(ValueError):
    """The request body does not fit what the model takes: a 400, not a model failure."""


class LoadedModel(Protocol):
    def predict(self, body: Any) -> Any:
        """Score one decoded JSON body; return what becomes the JSON answer."""


class ScoreModel:
    """An OCI Data Science artifact: ``load_model()`` once, ``predict(data, model)`` per call.

    ``data`` is the decoded JSON body and the JSON ``predict`` returns is the answer, as on OCI.
    """

    def __init__(self, artifact: Path) -> None:
        sys.path.insert(0, str(artifact))
        spec = importlib.util.spec_from_file_location("score", artifact / "score.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {artifact / 'score.py'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["score"] = module
        spec.loader.exec_module(module)
        self._predict = module.predict
        param = inspect.signature(module.predict).parameters.get("model")
        self._takes_model = param is not None
        if param is not None and param.default not in (inspect.Parameter.empty, None):
            # OCI's template loads the model as predict's default argument at import: reuse it.
            self._model = param.default
        else:
            self._model = module.load_model()

    def predict(self, body: Any) -> Any:
        if self._takes_model:
            return self._predict(body, model=self._model)
        return self._predict(body)


class MlflowModel:
    """An MLflow pyfunc model, decoded and encoded by MLflow's own scoring-server functions."""

    def __init__(self, artifact: Path) -> None:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server

        self._model = mlflow.pyfunc.load_model(str(artifact))
        self._server: Any = scoring_server  # MLflow's scoring functions are untyped
        metadata = self._model.metadata
        self._schema = metadata.get_input_schema() if metadata is not None else None

    def predict(self, body: Any) -> Any:
        from mlflow.exceptions import MlflowException

        if not isinstance(body, dict):
            raise ModelInputError(
                "Expected a JSON object with one of dataframe_split, dataframe_records, "
                "instances or inputs, and optionally params."
            )
        params = body.get("params")
        data_keys = {k: v for k, v in body.items() if k not in ("params", "client_request_id")}
        try:
            data = self._server.infer_and_parse_data(data_keys, self._schema)
        except MlflowException as exc:
            raise ModelInputError(exc.message) from exc
        raw = self._model.predict(data, params=params) if params else self._model.predict(data)
        out: list[str] = []
        self._server.predictions_to_json(raw, _Sink(out))
        return json.loads("".join(out))


class _Sink:
    """A file-like ``write`` target for MLflow's ``predictions_to_json``."""

    def __init__(self, parts: list[str]) -> None:
        self._parts = parts

    def write(self, text: str) -> None:
        self._parts.append(text)


def load(artifact: Path, model_format: str) -> LoadedModel:
    if model_format == "score_py":
        return ScoreModel(artifact)
    if model_format == "mlflow":
        return MlflowModel(artifact)
    raise ValueError(f"unknown model format {model_format!r}: expected score_py or mlflow")
