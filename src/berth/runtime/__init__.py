"""The program inside each replica: loads one model, answers health and predict over HTTP.

It runs inside the model's own Python environment, so it uses the standard library only (and
the model's own packages, e.g. MLflow for MLflow models). It imports nothing of berth but
``berth.runtime`` and ``berth.core``.
"""
