"""Train the benchmark's iris classifier and save it once as an MLflow model.

Runs in the mlflow peer's venv: ``python train_model.py OUT_DIR REQUIREMENT...``. The model is
saved with cloudpickle (``OUT_DIR/model/model.pkl``) so that peers which do not read MLflow
models load the very same fitted estimator with ``pickle``.
"""

import sys
from pathlib import Path

import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

out, requirements = Path(sys.argv[1]), sys.argv[2:]
features, labels = load_iris(return_X_y=True, as_frame=True)
features.columns = COLUMNS
model = LogisticRegression(max_iter=500).fit(features, labels)
mlflow.sklearn.save_model(
    model,
    str(out / "model"),
    pip_requirements=requirements,
    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    signature=infer_signature(features, model.predict(features)),
)
