"""An OCI artifact that opts in to batching: the sum of each input row, for one request
(``predict``) or for several at once (``predict_batch``), and streamed (``predict_stream``).

A body ``{"hold": PATH}`` keeps its model thread busy: it creates ``PATH.held``, then waits
until ``PATH`` exists, so a test knows when the model is busy and chooses when it is free.
"""

import os
import time


def load_model(model_file_name="sum"):
    return sum


def predict(data, model=load_model()):  # noqa: B008 - OCI fixes this signature
    if "hold" in data:
        return _hold(data["hold"])
    return {"predictions": [model(row) for row in data["inputs"]]}


def predict_batch(data_list, model):
    """Every request's rows in one pass, then cut back into one answer per request."""
    sums = [model(row) for data in data_list for row in data["inputs"]]
    answers = []
    for data in data_list:
        answers.append({"predictions": sums[: len(data["inputs"])]})
        sums = sums[len(data["inputs"]) :]
    return answers


def predict_stream(data, model=load_model()):  # noqa: B008
    for row in data["inputs"]:
        yield {"sum": model(row)}


def _hold(path):
    with open(path + ".held", "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"held": True}
