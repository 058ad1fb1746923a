"""The BentoML peer: one service, one worker, access log off.

Runs in the bentoml peer's venv: ``bentoml serve bento_service:Iris``, with
``BENCH_MODEL_PKL`` naming the fitted estimator. Predicts like the bare app: named columns put
in the fitted order, a float array.
"""

import os
import pickle
import warnings

import bentoml
import numpy as np

warnings.filterwarnings("ignore", message="X does not have valid feature names")


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Iris:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL_PKL"], "rb") as file:
            self.model = pickle.load(file)
        self.fitted = list(self.model.feature_names_in_)

    @bentoml.api
    def predict(self, columns: list[str], data: list[list[float]]) -> list[int]:
        order = [columns.index(name) for name in self.fitted]
        rows = np.array([[row[i] for i in order] for row in data], dtype=np.float64)
        return self.model.predict(rows).tolist()
