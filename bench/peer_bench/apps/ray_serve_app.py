"""The Ray Serve peer: a driver that starts a local Ray, one replica, and waits for SIGTERM.

Runs in the ray peer's venv: ``python ray_serve_app.py PORT TEMP_DIR``, with
``BENCH_MODEL_PKL`` naming the fitted estimator. Predicts like the bare app: named columns put
in the fitted order, a float array. On SIGTERM it shuts Serve and Ray down, so no cluster is
left behind.
"""

import os
import pickle
import signal
import sys
import threading
import warnings

import numpy as np
import ray
from ray import serve
from starlette.requests import Request


@serve.deployment(num_replicas=1, logging_config={"enable_access_log": False})
class Iris:
    def __init__(self, path: str) -> None:
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        with open(path, "rb") as file:
            self.model = pickle.load(file)
        self.fitted = list(self.model.feature_names_in_)

    async def __call__(self, request: Request) -> dict[str, list[int]]:
        body = await request.json()
        order = [body["columns"].index(name) for name in self.fitted]
        rows = np.array([[row[i] for i in order] for row in body["data"]], dtype=np.float64)
        return {"predictions": self.model.predict(rows).tolist()}


def main() -> None:
    port, temp_dir = int(sys.argv[1]), sys.argv[2]
    ray.init(include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(Iris.bind(os.environ["BENCH_MODEL_PKL"]), name="iris", route_prefix="/predict")
        # After ray.init, which installs a SIGTERM handler of its own that kills the driver.
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print("ray serve ready", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
