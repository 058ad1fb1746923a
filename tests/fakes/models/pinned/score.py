"""Reports the version of the package its requirements.txt pins, and what else it can import."""

import importlib.util

import packaging


def load_model():
    return {}


def predict(data, model=None):
    return {
        "packaging": packaging.__version__,
        "fastapi_importable": importlib.util.find_spec("fastapi") is not None,
    }
