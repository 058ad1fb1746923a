"""Run in a model's environment by ``test_numeric_lane.py``: saves real scikit-learn MLflow
models, and prints, as JSON, whether the numeric lane opened for each and, per body, whether the
lane read it and what it answered beside what MLflow's own path answers.

``python lane_probe.py WORK_DIR``
"""

import json
import sys
import warnings
from pathlib import Path

import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from berth.runtime.batching import BatchScorer
from berth.runtime.models import MlflowModel

C = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
R = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
work = Path(sys.argv[1])
features, labels = load_iris(return_X_y=True, as_frame=True)
features.columns = C


def save(name, estimator, data, **kwargs):
    estimator.fit(data, labels)
    path = work / name
    signature = infer_signature(data, estimator.predict(data))
    pickled = mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
    mlflow.sklearn.save_model(
        estimator, str(path), signature=signature, serialization_format=pickled, **kwargs
    )
    return MlflowModel(path)


def mlflow_answer(model, body):
    try:
        return model.answer(model.parse(body))
    except Exception as exc:  # the replica answers these 400, lane or not
        return {"error": f"{type(exc).__name__}: {exc}"}


def lane_answer(model, body):
    rows = model.lane.rows(body) if model.lane is not None else None
    return None if rows is None else model.predict(body)


warnings.simplefilter("ignore")
integers = (features * 10).round().astype("int64")
models = {
    "logistic": save("logistic", LogisticRegression(max_iter=500), features),
    "forest": save("forest", RandomForestClassifier(n_estimators=5, random_state=0), features),
    "proba": save(
        "proba", LogisticRegression(max_iter=500), features, pyfunc_predict_fn="predict_proba"
    ),
    "integers": save("integers", make_pipeline(StandardScaler(), LogisticRegression()), integers),
    "by_name": save(
        "by_name",
        make_pipeline(
            ColumnTransformer([("scale", StandardScaler(), ["petal_length", "petal_width"])]),
            LogisticRegression(),
        ),
        features,
    ),
}
records = [dict(zip(C, r, strict=True)) for r in R]
bodies = {
    "split": {"dataframe_split": {"columns": C, "data": R}},
    "split_reordered": {"dataframe_split": {"columns": C[::-1], "data": [r[::-1] for r in R]}},
    "records": {"dataframe_records": records},
    "instances": {"instances": records},
    "inputs_columns": {"inputs": {c: [r[i] for r in R] for i, c in enumerate(C)}},
    "ints_in_float_columns": {"dataframe_split": {"columns": C, "data": [[5, 3, 1, 0]]}},
    "with_request_id": {"dataframe_records": records[:1], "client_request_id": "x"},
    "extra_column": {"dataframe_records": [{**records[0], "other": 1.0}]},
    "missing_column": {"dataframe_records": [{k: records[0][k] for k in C[:3]}]},
    "text_value": {"dataframe_split": {"columns": C, "data": [["5.1", 3.5, 1.4, 0.2]]}},
    "bool_value": {"dataframe_split": {"columns": C, "data": [[True, 3.5, 1.4, 0.2]]}},
    "nan_value": {"dataframe_split": {"columns": C, "data": [[float("nan"), 3.5, 1.4, 0.2]]}},
    "params": {"dataframe_records": records, "params": {"x": 1}},
    "instances_rows": {"instances": R},
    "split_with_index": {"dataframe_split": {"columns": C, "index": [7, 8, 9], "data": R}},
}
report = {"lane": {}, "bodies": {}, "batched": {}}
for name, model in models.items():
    report["lane"][name] = model.lane is not None
    report["bodies"][name] = {
        body_name: {"lane": lane_answer(model, body), "mlflow": mlflow_answer(model, body)}
        for body_name, body in bodies.items()
    }
# Batched lane requests answer as they do alone.
model = models["forest"]
alone = [model.predict({"dataframe_records": [r]}) for r in records]
outcomes = {}
BatchScorer(model.batchable()).score(
    [{"dataframe_records": [r]} for r in records],
    lambda idx, outs: outcomes.update(
        {i: (o.value, o.shared) for i, o in zip(idx, outs, strict=True)}
    ),
)
report["batched"] = {
    "same": [outcomes[i][0] for i in range(len(records))] == alone,
    "shared": max(shared for _, shared in outcomes.values()),
}
print(json.dumps(report))
