"""The base of the wire types this API reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are refused, as Databricks' proto parsing refuses them.

    ``model_name`` and ``model_version`` are Databricks field names, hence no protected
    namespaces.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
