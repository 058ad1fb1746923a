"""A model that answers with its input: enough to give an endpoint something to serve."""


def load_model():
    return "echo"


def predict(data, model=None):
    return {"predictions": data}
