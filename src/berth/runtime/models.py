"""Loading a model artifact and calling it: OCI ``score.py`` and MLflow pyfunc models."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol


class ModelInputError(ValueError):
    """The request body does not fit what the model takes: a 400, not a model failure."""


class LoadedModel(Protocol):
    def predict(self, body: Any) -> Any:
        """Score one decoded JSON body; return what becomes the JSON answer."""

    def predict_stream(self, body: Any) -> Iterator[Any] | None:
        """The chunks of a streamed answer, or None when the model cannot stream."""


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
        self._stream = getattr(module, "predict_stream", None)

    def predict(self, body: Any) -> Any:
        if self._takes_model:
            return self._predict(body, model=self._model)
        return self._predict(body)

    def predict_stream(self, body: Any) -> Iterator[Any] | None:
        """``predict_stream(data, model)``, a generator of JSON chunks, when score.py has one."""
        if self._stream is None:
            return None
        chunks: Iterator[Any] = (
            self._stream(body, model=self._model) if self._takes_model else self._stream(body)
        )
        return chunks


class MlflowModel:
    """An MLflow pyfunc model, decoded and encoded by MLflow's own scoring-server functions.

    Bodies in the unified LLM shape (``messages``, ``prompt`` or ``input``) reach the model as
    they are and come back unwrapped, as MLflow's server and Databricks do for chat models.
    """

    def __init__(self, artifact: Path) -> None:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server

        self._model = mlflow.pyfunc.load_model(str(artifact))
        self._server: Any = scoring_server  # MLflow's scoring functions are untyped
        self._metadata = self._model.metadata
        self._schema = self._metadata.get_input_schema() if self._metadata is not None else None

    def _parse(self, body: Any) -> tuple[Any, Any, bool]:
        """(data, params, unified LLM input) for one body, as MLflow's scoring server reads it."""
        from mlflow.exceptions import MlflowException

        if not isinstance(body, dict):
            raise ModelInputError(
                "Expected a JSON object with one of dataframe_split, dataframe_records, "
                "instances or inputs (or messages, prompt or input), and optionally params."
            )
        body = {k: v for k, v in body.items() if k != "client_request_id"}
        try:
            parsed = self._server._parse_json_data(body, self._metadata, self._schema)
        except MlflowException as exc:
            raise ModelInputError(exc.message) from exc
        return parsed.data, parsed.params or None, parsed.is_unified_llm_input

    def predict(self, body: Any) -> Any:
        data, params, unified = self._parse(body)
        raw = self._model.predict(data, params=params) if params else self._model.predict(data)
        out: list[str] = []
        encode = (
            self._server.unwrapped_predictions_to_json
            if unified
            else self._server.predictions_to_json
        )
        encode(raw, _Sink(out))
        return json.loads("".join(out))

    def predict_stream(self, body: Any) -> Iterator[Any] | None:
        if getattr(self._model, "_predict_stream_fn", None) is None:
            return None
        data, params, _ = self._parse({k: v for k, v in body.items() if k != "stream"})
        chunks = self._model.predict_stream(data, params=params)
        return (self._server._get_jsonable_obj(chunk) for chunk in chunks)


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
