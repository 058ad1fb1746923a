"""berth: self-hosted model serving, wire-compatible with Databricks Model Serving."""

__version__ = "0.1.0"
