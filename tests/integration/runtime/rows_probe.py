"""Run in a model's environment (pandas, numpy, scikit-learn, MLflow) by ``test_rows.py``:
merges and splits real inputs and predictions and prints, as JSON, what came out of each
merged call beside what each request gets alone, for the test to compare.

``python rows_probe.py WORK_DIR``
"""

import json
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc.scoring_server import predictions_to_json
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from berth.runtime.batching import BatchScorer
from berth.runtime.models import MlflowModel
from berth.runtime.rows import Rows

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8]]

rows = Rows()


def encoded(raw):
    parts = []

    class Sink:
        write = parts.append

    predictions_to_json(raw, Sink())
    return json.loads("".join(parts))


def frame(*values):
    return pd.DataFrame([ROWS[v] for v in values], columns=COLUMNS)


OUTPUTS = {
    "array": lambda df: df.to_numpy().sum(axis=1),
    "matrix": lambda df: df.to_numpy() * 2,
    "list": lambda df: [f"row {i}" for i in df["sepal_length"]],
    "series": lambda df: (df["petal_length"] * 10).rename("scaled"),
    "frame": lambda df: df.assign(ratio=df["sepal_length"] / df["sepal_width"]),
    "dict": lambda df: {"sum": df.to_numpy().sum(axis=1), "first": df["sepal_length"].tolist()},
}
"""Models' outputs with one row per input row, by kind."""

UNSPLITTABLE = {
    "scalar": lambda df: np.float64(df.to_numpy().sum()),
    "summary": lambda df: df.describe(),
    "dict_with_scalar": lambda df: {"sum": df.to_numpy().sum(axis=1), "n": len(df)},
    "text": lambda df: "done",
}
"""Outputs that do not have one row per input row."""


def split_outputs():
    """For each output kind: the merged call's output split back, and each input's alone."""
    inputs = [frame(0), frame(1, 2), frame(3)]
    counts = [rows.count(data) for data in inputs]
    merged = rows.concat(inputs)
    results = {}
    for kind, model in OUTPUTS.items():
        parts = rows.split(model(merged), counts)
        results[kind] = {
            "batched": [encoded(part) for part in parts],
            "alone": [encoded(model(data)) for data in inputs],
        }
    for kind, model in UNSPLITTABLE.items():
        results[kind] = {"split": rows.split(model(merged), counts) is not None}
    return results


def merge_keys():
    """Whether two inputs may share a call, for pairs that differ in one way or none."""
    text = np.array(["a", "bb"])
    pairs = {
        "same_frames": (frame(0), frame(1, 2)),
        "other_columns": (frame(0), frame(0)[COLUMNS[:3]]),
        "other_column_order": (frame(0), frame(0)[COLUMNS[::-1]]),
        "other_dtypes": (frame(0), frame(0).astype({"sepal_length": "float32"})),
        "own_index": (frame(0), frame(0).set_axis([7])),
        "same_arrays": (np.ones((1, 4)), np.zeros((3, 4))),
        "other_row_shape": (np.ones((1, 4)), np.ones((1, 3))),
        "other_array_dtype": (np.ones((1, 4)), np.ones((1, 4), dtype=np.int64)),
        "texts_of_other_widths": (text, np.array(["ccc"])),
        "same_tensors": ({"a": np.ones(2), "b": text}, {"a": np.ones(1), "b": np.array(["x"])}),
        "other_tensor_names": ({"a": np.ones(2)}, {"b": np.ones(2)}),
        "ragged_tensors": ({"a": np.ones(2), "b": np.ones(3)}, {"a": np.ones(2), "b": np.ones(3)}),
        "scalars": (np.float64(1), np.float64(2)),
        "lists": ([1, 2], [3]),
        "empty_frames": (frame(), frame()),
    }
    keys = {name: (rows.key(a), rows.key(b)) for name, (a, b) in pairs.items()}
    return {name: a is not None and a == b for name, (a, b) in keys.items()}


def save_models(work):
    features, labels = load_iris(return_X_y=True, as_frame=True)
    features.columns = COLUMNS
    model = LogisticRegression(max_iter=500).fit(features, labels)
    signed, unsigned = work / "signed", work / "unsigned"
    signature = infer_signature(features, model.predict(features))
    pickled = mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
    mlflow.sklearn.save_model(model, str(signed), signature=signature, serialization_format=pickled)
    on_arrays = LogisticRegression(max_iter=500).fit(features.to_numpy(), labels)
    mlflow.sklearn.save_model(on_arrays, str(unsigned), serialization_format=pickled)
    with_signature = MlflowModel(signed)
    with_signature.lane = (
        None  # MLflow's own merging is what is probed here (lane_probe.py: the lane)
    )
    return with_signature, MlflowModel(unsigned)


def record(row):
    return dict(zip(COLUMNS, row, strict=True))


SIGNED_BODIES = [
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:2]}},
    {"dataframe_records": [record(ROWS[2])]},
    {"dataframe_split": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]}},  # ints: cast by schema
    {"instances": [record(r) for r in ROWS[1:]]},
    {"inputs": {c: [r[i] for r in ROWS[:3]] for i, c in enumerate(COLUMNS)}},
    {"dataframe_records": [record(ROWS[3])], "params": {"ignored": 1}},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[3, 4]]}},
    {"dataframe_split": {"columns": COLUMNS}},
    ["not", "an", "object"],
]
UNSIGNED_BODIES = [
    {"instances": ROWS[:2]},
    {"inputs": ROWS[2:]},
    {"inputs": [ROWS[0]]},
    {"instances": [[1.0, 2.0]]},
]


def alone(model, body):
    try:
        return model.predict(body)
    except Exception as exc:
        return {"error": str(exc)}


def batched(model, bodies):
    """Each body's answer through one batch, and how many requests shared its call."""
    got = {}

    def deliver(indices, outcomes):
        for i, outcome in zip(indices, outcomes, strict=True):
            error = outcome.error
            value = outcome.value if error is None else {"error": str(error)}
            got[i] = (value, outcome.shared)

    BatchScorer(model.batchable()).score(bodies, deliver)
    return [got[i] for i in range(len(bodies))]


def mlflow_models(work):
    signed, unsigned = save_models(work)
    results = {}
    for name, model, bodies in (
        ("signed", signed, SIGNED_BODIES),
        ("unsigned", unsigned, UNSIGNED_BODIES),
    ):
        answers = batched(model, bodies)
        results[name] = {
            "batched": [value for value, _ in answers],
            "shared": [shared for _, shared in answers],
            "alone": [alone(model, body) for body in bodies],
        }
    return results


if __name__ == "__main__":
    work = Path(sys.argv[1])
    probe = {"outputs": split_outputs(), "merges": merge_keys(), "models": mlflow_models(work)}
    print(json.dumps(probe))
