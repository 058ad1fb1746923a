"""A model that takes minutes to load (tests cancel it long before it is ready)."""

import threading


def load_model():
    threading.Event().wait(300)
    return {}


def predict(data, model=None):
    return {"version": "slow"}
