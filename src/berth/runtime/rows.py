"""Merging MLflow model inputs by rows and splitting predictions back, for batching.

Works on what MLflow's ``_parse_json_data`` made of each body, not on the wire format, so
inputs merge whenever the model would receive values of the same kind: pandas DataFrames with
the same columns and dtypes (``dataframe_split``, ``dataframe_records``), numpy arrays with the
same row shape and dtype (``instances`` or ``inputs`` given as rows), dicts of such arrays with
the same names (``instances`` as a list of dicts, ``inputs`` as named tensors). Anything else
(scalars, plain lists, unified LLM input) is never merged.

pandas and numpy come from the model's environment, which an MLflow model always has; berth's
own has neither, so they are imported when batching starts, and typed ``Any``.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Hashable, Sequence
from typing import Any


class Rows:
    def __init__(self) -> None:
        self._pd: Any = importlib.import_module("pandas")
        self._np: Any = importlib.import_module("numpy")

    def key(self, data: Any) -> Hashable | None:
        """What must be equal for two inputs to be merged; None for an input never merged."""
        pd, np = self._pd, self._np
        if isinstance(data, pd.DataFrame):
            index = data.index
            # A request's own index may mean something to the model: keep such frames apart.
            plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
            if not plain or len(data) == 0:
                return None
            return ("frame", tuple(data.columns), tuple(data.dtypes))
        if isinstance(data, np.ndarray):
            if data.ndim == 0 or len(data) == 0:
                return None
            return ("array", _tensor_key(data))
        if isinstance(data, dict) and data:
            tensors = list(data.values())
            if not all(isinstance(t, np.ndarray) and t.ndim > 0 for t in tensors):
                return None
            if len({len(t) for t in tensors}) != 1 or len(tensors[0]) == 0:
                return None  # not one row per index: predictions could not be split by row
            return ("tensors", tuple((name, _tensor_key(t)) for name, t in data.items()))
        return None

    def count(self, data: Any) -> int:
        """Rows in an input that ``key`` accepted."""
        if isinstance(data, dict):
            return len(next(iter(data.values())))
        return len(data)

    def concat(self, inputs: Sequence[Any]) -> Any:
        """One input holding the rows of ``inputs`` (all with the same key), in order."""
        first = inputs[0]
        if isinstance(first, self._pd.DataFrame):
            return self._pd.concat(inputs, ignore_index=True)
        if isinstance(first, dict):
            return {name: self._np.concatenate([d[name] for d in inputs]) for name in first}
        return self._np.concatenate(inputs)

    def split(self, output: Any, counts: Sequence[int]) -> list[Any] | None:
        """``output`` cut into one part per input of ``counts`` rows; None if it has not one
        row per input row (a scalar, a summary, a dict of such)."""
        if isinstance(output, dict):
            columns = {name: self.split(value, counts) for name, value in output.items()}
            if not columns:
                return None
            parts: list[Any] = [{} for _ in counts]
            for name, column in columns.items():
                if column is None:
                    return None
                for part, piece in zip(parts, column):
                    part[name] = piece
            return parts
        if isinstance(output, (self._pd.DataFrame, self._pd.Series)):
            rows = output.iloc
        elif isinstance(output, list) or (isinstance(output, self._np.ndarray) and output.ndim):
            rows = output
        else:
            return None
        if len(output) != sum(counts):
            return None
        edges = list(itertools.accumulate(counts, initial=0))
        return [rows[start:end] for start, end in zip(edges, edges[1:])]


def _tensor_key(array: Any) -> tuple[Any, ...]:
    # Text arrays merge whatever their widths: concatenating widens, the values stay the same.
    kind = array.dtype.kind
    return (array.shape[1:], kind if kind in "US" else array.dtype)
