"""A tiny OCI Data Science artifact: the sum of each input row, no dependencies."""


def load_model(model_file_name="sum"):
    return sum


def predict(data, model=load_model()):  # noqa: B008 - OCI fixes this signature
    rows = data["inputs"] if isinstance(data, dict) else data
    return {"predictions": [model(row) for row in rows]}
