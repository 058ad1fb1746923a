"""``GET /api/2.0/serving-endpoints/{name}/payloads``: berth's reader of an endpoint's
inference table (the Parquet files every server wrote under ``inference/<endpoint id>`` of
``$BERTH_SHARED_DIR``, or this server's under ``$BERTH_HOME``), newest first.

Payloads are the callers' data: reading them needs CAN_MANAGE on the endpoint.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from berth.api import access
from berth.api.deps import PrincipalDep, ServicesDep
from berth.inference import read_payloads, schema_description

router = APIRouter(tags=["inference tables"])


@router.get("/api/2.0/serving-endpoints/{name}/payloads")
def get_payloads(
    name: str,
    services: ServicesDep,
    principal: PrincipalDep,
    since: Annotated[int | None, Query(ge=0, le=2**53, description="Epoch ms, inclusive.")] = None,
    until: Annotated[int | None, Query(ge=0, le=2**53, description="Epoch ms, exclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_MANAGE")
    rows = read_payloads(
        services.settings.inference_dir, record.id, since_ms=since, until_ms=until, limit=limit
    )
    return {"payloads": rows}


@router.get("/api/2.0/berth/inference-tables/schema")
def get_schema() -> dict[str, Any]:
    """The columns of every inference table, with what each holds."""
    return {"columns": schema_description()}
