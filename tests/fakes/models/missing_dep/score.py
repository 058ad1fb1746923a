"""A model that needs a package no registry has."""


def load_model():
    return {}


def predict(data, model=None):
    return {"predictions": []}
