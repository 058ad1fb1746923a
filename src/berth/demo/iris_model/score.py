"""Iris classifier as an OCI Data Science style artifact: nearest class centroid, no dependencies.

Accepts rows of [sepal_length, sepal_width, petal_length, petal_width] in any of the MLflow
scoring formats, or a bare list of rows.
"""

import math

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def load_model(model_file_name="centroids"):
    return {
        "setosa": (5.006, 3.428, 1.462, 0.246),
        "versicolor": (5.936, 2.770, 4.260, 1.326),
        "virginica": (6.588, 2.974, 5.552, 2.026),
    }


def _rows(data):
    if isinstance(data, list):
        return data
    if "dataframe_split" in data:
        split = data["dataframe_split"]
        columns = split.get("columns", FEATURES)
        return [[dict(zip(columns, row))[f] for f in FEATURES] for row in split["data"]]
    if "dataframe_records" in data:
        return [[rec[f] for f in FEATURES] for rec in data["dataframe_records"]]
    if "instances" in data:
        return [[r[f] for f in FEATURES] if isinstance(r, dict) else r for r in data["instances"]]
    if "inputs" in data:
        inputs = data["inputs"]
        if isinstance(inputs, dict):
            return [list(row) for row in zip(*(inputs[f] for f in FEATURES))]
        return inputs
    raise ValueError("expected rows of 4 iris features: " + ", ".join(FEATURES))


def predict(data, model=load_model()):
    labels = []
    for row in _rows(data):
        if len(row) != 4:
            raise ValueError(f"each row needs 4 features ({', '.join(FEATURES)}), got {len(row)}")
        labels.append(min(model, key=lambda name: math.dist(model[name], row)))
    return {"predictions": labels}
