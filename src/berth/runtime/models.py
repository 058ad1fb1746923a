"""Loading a model artifact and calling it: OCI ``score.py`` and MLflow pyfunc models.

A score.py may opt in to batching (``--max-batch-size`` above 1) by defining, beside
``predict``, ``predict_batch(data_list, model)``: it gets the decoded JSON bodies of several
concurrent requests and returns a list with one answer per body, in order, each what
``predict`` would answer for that body alone. If it raises or returns anything else, those
requests are scored one by one with ``predict``, so a bad body fails alone; a lone request is
always scored with ``predict``. A score.py without ``predict_batch`` is never batched.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from berth.runtime.batching import Batchable
from berth.runtime.numeric_lane import NumericLane, Row
from berth.runtime.rows import Rows


class ModelInputError(ValueError):
    """The request body does not fit what the model takes: a 400, not a model failure."""


class LoadedModel(Protocol):
    def predict(self, body: Any) -> Any:
        """Score one decoded JSON body; return what becomes the JSON answer."""

    def predict_stream(self, body: Any) -> Iterator[Any] | None:
        """The chunks of a streamed answer, or None when the model cannot stream."""

    def batchable(self) -> Batchable[Any] | None:
        """How requests to this model are merged, or None when each is scored alone."""


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
        self._predict_batch = getattr(module, "predict_batch", None)
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

    def batchable(self) -> Batchable[Any] | None:
        if self._predict_batch is None:
            return None
        return _ScoreBatch(self, self._predict_batch, self._model)


class _ScoreBatch:
    """A score.py's ``predict_batch`` as the batcher sees it: every body may share a call."""

    def __init__(self, model: ScoreModel, predict_batch: Callable[..., Any], loaded: Any) -> None:
        self._one = model
        self._batch = predict_batch
        self._loaded = loaded
        self._takes_model = "model" in inspect.signature(predict_batch).parameters

    def prepare(self, body: Any) -> Any:
        return body

    def merge_key(self, prepared: Any) -> Hashable | None:
        return "score.py"  # what a batch of bodies means is predict_batch's business

    def predict_merged(self, inputs: list[Any]) -> Sequence[Any] | None:
        answers = (
            self._batch(inputs, model=self._loaded) if self._takes_model else self._batch(inputs)
        )
        return answers if isinstance(answers, list) else None

    def predict_one(self, prepared: Any) -> Any:
        return self._one.predict(prepared)


class Parsed(NamedTuple):
    """One body as MLflow's scoring server reads it."""

    data: Any
    params: dict[str, Any] | None
    unified: bool
    """Unified LLM input (``messages``, ``prompt``, ``input``): answered unwrapped."""


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
        self.lane = NumericLane.probe(self._model, lambda raw: self.encode(raw, unified=False))

    def parse(self, body: Any) -> Parsed:
        """Read one body with MLflow's own parser; a body it refuses is a ModelInputError."""
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
        return Parsed(parsed.data, parsed.params or None, parsed.is_unified_llm_input)

    def predict(self, body: Any) -> Any:
        if self.lane is not None and (rows := self.lane.rows(body)) is not None:
            return self.lane.answer(rows)
        return self.answer(self.parse(body))

    def answer(self, parsed: Parsed) -> Any:
        return self.encode(self.call(parsed.data, parsed.params), parsed.unified)

    def call(self, data: Any, params: dict[str, Any] | None) -> Any:
        """The model's raw predictions."""
        return self._model.predict(data, params=params) if params else self._model.predict(data)

    def encode(self, raw: Any, unified: bool) -> Any:
        """Raw predictions as the JSON answer MLflow's scoring server gives."""
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
        data, params, _ = self.parse({k: v for k, v in body.items() if k != "stream"})
        chunks = self._model.predict_stream(data, params=params)
        return (self._server._get_jsonable_obj(chunk) for chunk in chunks)

    def batchable(self) -> Batchable[Any] | None:
        return _MlflowBatch(self)


class LaneRows(NamedTuple):
    """A body the numeric lane read: its rows in signature order."""

    rows: list[Row]


class _MlflowBatch:
    """Requests to an MLflow model merged by rows (``rows.py``) when they are alike: the same
    kind of input with the same columns and dtypes, and the same params; bodies the numeric
    lane reads merge with each other as plain rows."""

    def __init__(self, model: MlflowModel) -> None:
        self._model = model
        self._rows = Rows()

    def prepare(self, body: Any) -> Parsed | LaneRows:
        lane = self._model.lane
        if lane is not None and (rows := lane.rows(body)) is not None:
            return LaneRows(rows)
        return self._model.parse(body)

    def merge_key(self, prepared: Parsed | LaneRows) -> Hashable | None:
        if isinstance(prepared, LaneRows):
            return "lane"
        if prepared.unified:
            return None
        rows = self._rows.key(prepared.data)
        if rows is None:
            return None
        try:
            params = json.dumps(prepared.params, sort_keys=True)
        except (TypeError, ValueError):
            return None
        return (rows, params)

    def predict_merged(self, inputs: list[Parsed | LaneRows]) -> Sequence[Any] | None:
        lane = self._model.lane
        lanes = [i for i in inputs if isinstance(i, LaneRows)]
        if lane is not None and lanes:
            rows = [row for given in lanes for row in given.rows]
            predicted = self._rows.split(lane.predict(rows), [len(i.rows) for i in lanes])
            return None if predicted is None else [{"predictions": p.tolist()} for p in predicted]
        parsed_inputs = [i for i in inputs if isinstance(i, Parsed)]
        merged = self._rows.concat([parsed.data for parsed in parsed_inputs])
        raw = self._model.call(merged, parsed_inputs[0].params)
        parts = self._rows.split(raw, [self._rows.count(parsed.data) for parsed in parsed_inputs])
        if parts is None:
            return None
        return [self._model.encode(part, unified=False) for part in parts]

    def predict_one(self, prepared: Parsed | LaneRows) -> Any:
        if isinstance(prepared, LaneRows) and self._model.lane is not None:
            return self._model.lane.answer(prepared.rows)
        assert isinstance(prepared, Parsed)
        return self._model.answer(prepared)


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
