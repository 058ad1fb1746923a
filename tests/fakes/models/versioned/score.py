"""Answers with the rows it got and the version written in version.txt beside it."""

import os

HERE = os.path.dirname(os.path.realpath(__file__))


def load_model():
    with open(os.path.join(HERE, "version.txt")) as fh:
        return {"version": fh.read().strip()}


def predict(data, model=load_model()):
    return {"version": model["version"], "echo": data}
