"""The enums of the serving-endpoints API, spelled as Databricks spells them."""

from __future__ import annotations

from enum import StrEnum


class EndpointReady(StrEnum):
    READY = "READY"
    NOT_READY = "NOT_READY"


class ConfigUpdate(StrEnum):
    NOT_UPDATING = "NOT_UPDATING"
    IN_PROGRESS = "IN_PROGRESS"
    UPDATE_FAILED = "UPDATE_FAILED"
    UPDATE_CANCELED = "UPDATE_CANCELED"


class DeploymentState(StrEnum):
    CREATING = "DEPLOYMENT_CREATING"
    READY = "DEPLOYMENT_READY"
    FAILED = "DEPLOYMENT_FAILED"
    ABORTED = "DEPLOYMENT_ABORTED"
    RECOVERING = "DEPLOYMENT_RECOVERING"
