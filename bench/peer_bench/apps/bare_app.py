"""The practical limit: a minimal Starlette app on uvicorn that parses the JSON and predicts.

Runs in the bare peer's venv: ``uvicorn bare_app:app``, with ``BENCH_MODEL_PKL`` naming the
fitted estimator. The body names its columns; they are put in the order the model was fitted
with and predicted as a float array, on the event loop: nothing between the socket and the model.
"""

import os
import pickle
import warnings

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

with open(os.environ["BENCH_MODEL_PKL"], "rb") as file:
    MODEL = pickle.load(file)
FITTED = list(MODEL.feature_names_in_)
warnings.filterwarnings("ignore", message="X does not have valid feature names")


async def predict(request: Request) -> Response:
    body = await request.json()
    order = [body["columns"].index(name) for name in FITTED]
    rows = np.array([[row[i] for i in order] for row in body["data"]], dtype=np.float64)
    return JSONResponse({"predictions": MODEL.predict(rows).tolist()})


async def ping(request: Request) -> Response:
    return Response("ok")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ping", ping)])
