"""Routes of provisioned throughput: Databricks' ``get-model-optimization-info`` and model-units
endpoints (``/serving-endpoints/pt``), and berth's calibration of a model version.

One model unit is one throughput chunk: what one replica of the version sustains on this
host, in tokens/s, measured at the reference workload. A ``pt`` entity's band is its units
in chunks, up to twice that with ``burst_scaling_enabled`` (the default).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from berth.api import endpoint_views as views
from berth.api.calibration_service import CalibrationService
from berth.api.deps import EndpointsDep, PrincipalDep, get_services
from berth.api.provisioned import pt_config, pt_endpoint
from berth.api.routes.endpoints import BASE, MANAGER
from berth.api.schemas.endpoints import CreatePtEndpoint, UpdatePtConfig

Json = dict[str, Any]
CALIBRATION = "/api/2.0/models/{name}/versions/{version}/calibration"

router = APIRouter(tags=["provisioned-throughput"])


def calibration_service(request: Request) -> CalibrationService:
    return CalibrationService(get_services(request))


CalibrationsDep = Annotated[CalibrationService, Depends(calibration_service)]


@router.get(BASE + "/get-model-optimization-info/{name}/{version}")
def get_model_optimization_info(
    name: str, version: str, calibrations: CalibrationsDep, principal: PrincipalDep
) -> Json:
    """``{"optimizable": true, "model_type", "throughput_chunk_size"}`` for an open LLM
    (calibrated on this host first if it never was: tens of seconds), ``{"optimizable":
    false}`` for any other model; berth adds ``calibration``: how and when it was measured."""
    return calibrations.optimization_info(principal, name, version)


@router.post(BASE + "/pt")
def create_pt_endpoint(
    body: CreatePtEndpoint, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """An endpoint whose entities are sized in model units; answered as a create is."""
    record = endpoints.create(principal, pt_endpoint(body))
    return views.detailed(record, MANAGER, chunks=endpoints.calibrations(record))


@router.put(BASE + "/pt/{name}/config")
def update_pt_config(
    name: str, body: UpdatePtConfig, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """A new config sized in model units, pending as any config update is."""
    record = endpoints.update_config(principal, name, pt_config(body.config))
    return views.detailed(record, MANAGER, endpoints.scale(name), endpoints.calibrations(record))


@router.post(CALIBRATION)
def calibrate(
    name: str, version: str, calibrations: CalibrationsDep, principal: PrincipalDep
) -> Json:
    """berth's extension: measure the version's throughput chunk again; answers the run's
    progress at once (poll ``GET``), the stored chunk replaced when it is done."""
    return calibrations.recalibrate(principal, name, version).to_json()


@router.get(CALIBRATION)
def calibration(
    name: str, version: str, calibrations: CalibrationsDep, principal: PrincipalDep
) -> Json:
    """berth's extension: the calibration going (phase, message, fraction measured), or the
    last one with its result (``calibration``: chunk, method, date, host fingerprint)."""
    return calibrations.progress(principal, name, version).to_json()
