"""The smallest artifact an endpoint can serve: it answers each request with its input."""


def load_model(model_file_name="echo"):
    return None


def predict(data, model=load_model()):  # noqa: B008 - OCI fixes this signature
    return {"predictions": data}
