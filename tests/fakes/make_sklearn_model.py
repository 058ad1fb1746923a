"""Train a small iris classifier, save it as an MLflow model, and record what it predicts.

Run as a separate process (``python make_sklearn_model.py OUT_DIR``), as a user would save a
model in their own environment: writes ``OUT_DIR/model`` and ``OUT_DIR/expected.json``.
"""

import json
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]

out = Path(sys.argv[1])
features, labels = load_iris(return_X_y=True, as_frame=True)
features.columns = COLUMNS
model = LogisticRegression(max_iter=500).fit(features, labels)
mlflow.sklearn.save_model(
    model,
    str(out / "model"),
    pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    signature=infer_signature(features, model.predict(features)),
)
expected = [int(v) for v in model.predict(pd.DataFrame(ROWS, columns=COLUMNS))]
(out / "expected.json").write_text(json.dumps(expected))
