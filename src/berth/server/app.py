"""Builds one ``berth serve`` process: store, API, controller, backend and gateway."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter, Depends, FastAPI

import berth
from berth.api.body_cap import BodyCap
from berth.api.content_type import DefaultJsonContentType
from berth.api.deps import current_principal
from berth.api.errors import install_error_handlers
from berth.api.routes import (
    dataplane,
    endpoint_docs,
    endpoints,
    envs,
    garden,
    health,
    leader,
    models,
    payloads,
    permissions,
    provisioned,
    scim,
    secrets,
    usage,
)
from berth.api.routes import metrics as metrics_routes
from berth.api.routes import tokens as token_routes
from berth.api.services import Services
from berth.backends.base import Backend, ReplicaState
from berth.console import mount_console
from berth.controller.autoscaler import Policy
from berth.controller.calibration import Calibrations
from berth.controller.environments import Environments
from berth.controller.load_board import LoadBoard
from berth.controller.reconciler import Controller
from berth.core.artifact_copies import ArtifactCopies
from berth.core.clock import SystemClock
from berth.core.dataplane import SnapshotBus
from berth.core.heap import freeze_startup_heap
from berth.core.images import find_image_runtime
from berth.envs import environment_details, install_package
from berth.gateway.build import build_gateway
from berth.identity.tokens import AdminBootstrap, TokenService
from berth.metrics import Metrics, ReplicaFigures
from berth.metrics.replicas import ReplicaAddress
from berth.providers.egress import egress_of
from berth.registry.artifacts import ArtifactStore
from berth.registry.garden import Garden
from berth.registry.service import Registry
from berth.registry.source_policy import SourcePolicy
from berth.sandbox import Sandbox
from berth.secrets import SecretCipher, SecretsService, load_key
from berth.secrets.references import resolve_reference
from berth.secrets.sealed_snapshot import SealedSnapshots
from berth.server.backends import build_backend
from berth.server.dispatch import Dispatch
from berth.server.leadership import Leadership, server_id
from berth.server.usage_writer import UsageWriter
from berth.server.workers import WorkerPool
from berth.settings import Settings
from berth.store import leases
from berth.store.db import Database
from berth.store.fencing import Fenced

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Server:
    app: Dispatch
    services: Services
    admin: AdminBootstrap


def ready_replicas(backend: Backend) -> list[ReplicaAddress]:
    """Where the replica-side figures are read from at each scrape."""
    return [
        ReplicaAddress(r.spec.endpoint, r.spec.served_entity, r.address)
        for r in backend.replicas()
        if r.state is ReplicaState.READY and r.address is not None
    ]


def sandbox_for(settings: Settings) -> Sandbox:
    config = settings.sandbox
    return Sandbox(
        settings.sandboxes_dir,
        mode=config.mode,
        run_as=config.run_as,
        uid_range=(config.uid_range_start, config.uid_range_size),
        network=config.network,
        pass_env=tuple(config.pass_env),
    )


def source_policy(settings: Settings) -> SourcePolicy:
    given = settings.registry
    return SourcePolicy(
        home=settings.home_dir,
        artifacts=settings.artifacts_location,
        shared=settings.data_dir,
        roots=tuple(given.source_roots),
        protocols=frozenset(p.lower() for p in given.source_protocols),
        allowed_hosts=frozenset(h.lower() for h in given.source_allowed_hosts),
        max_upload_bytes=given.max_upload_bytes,
        max_members=given.max_archive_members,
        max_extracted_bytes=given.max_extracted_bytes,
    )


PRIVATE_FILES = ("berth.db", "berth.db-wal", "berth.db-shm", "admin-token", "secret-key")


def private_home(settings: Settings) -> None:
    """``$BERTH_HOME`` is the server's alone: 0700, whatever made it."""
    settings.home_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.home_dir.chmod(0o700)


def private_data(settings: Settings) -> None:
    """Callers' payloads and access lines are the server's alone, also under
    ``$BERTH_SHARED_DIR``: their folders are made 0700 (one that exists is left as it is)."""
    for folder in (settings.inference_dir, settings.logs_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def private_files(settings: Settings) -> None:
    """The store, the admin token and the secret key: 0600."""
    for name in PRIVATE_FILES:
        path = settings.home_dir / name
        if path.exists():
            path.chmod(0o600)


FOLLOW_S = 5.0
"""How long a state change waits for gateway workers to hold the routes it needs."""


def build_server(settings: Settings, workers: WorkerPool | None = None) -> Server:
    """Open the store (migrating it), make the admin token, and wire every part.

    With ``workers`` (``--gateway-workers``), queries are answered by those processes: their
    metrics are rendered with this process's, and a replica is retired only once they follow.
    """
    private_home(settings)
    private_data(settings)
    db = Database(settings.store_url)
    db.migrate()
    private_files(settings)
    clock = SystemClock()
    tokens = TokenService(db, clock)
    configured = settings.admin_token.get_secret_value() if settings.admin_token else None
    admin = tokens.bootstrap_admin(settings.admin_token_file, configured)

    secret_store = SecretsService(db, clock, SecretCipher(load_key(settings)))
    bus = SnapshotBus()
    metrics = Metrics()
    scaling = settings.autoscaling
    gateway = build_gateway(
        settings, bus, metrics=metrics, on_demand=lambda _endpoint, _entity: controller.nudge()
    )

    def reveal(text: str) -> str | None:
        return resolve_reference(secret_store, text, "a served entity")

    sandbox = sandbox_for(settings)
    images = find_image_runtime(settings.replicas.container_runtime)
    backend = build_backend(settings, sandbox, images, reveal, lambda: controller.nudge())
    metrics.add(ReplicaFigures(lambda: ready_replicas(backend)))
    if workers is not None:
        metrics.add(workers)
        metrics.include_processes(workers.metrics_dir)
    copies = ArtifactCopies(settings.artifact_copies_dir)
    environments = Environments(
        settings.envs_dir, sys.executable, lambda: controller.nudge(), metrics, sandbox, copies
    )
    calibrations = Calibrations(
        db,
        environments,
        sandbox,
        clock,
        settings.calibrations_dir,
        lambda: controller.nudge(),
        measure_s=settings.calibration.measure_s,
    )
    local_drain = gateway.drain if workers is None else workers.drain(gateway.drain, bus)

    async def drain(replica_id: str) -> None:
        """Once the other servers' gateways route past the replica, as this one's do."""
        await leadership.followers_hold(bus.current.version, FOLLOW_S)
        await local_drain(replica_id)

    fenced = Fenced(db, leases.CONTROLLER)
    controller = Controller(
        fenced,
        backend,
        bus,
        clock,
        environments=environments,
        calibrations=calibrations,
        drain=drain,
        reveal=reveal,
        metrics=metrics,
        load=LoadBoard(gateway.load),
        policy=Policy(
            target_utilization=scaling.target_utilization,
            upscale_delay_s=scaling.upscale_delay_s,
            downscale_delay_s=scaling.downscale_delay_s,
            smoothing_s=scaling.smoothing_s,
            scale_to_zero_idle_s=scaling.scale_to_zero_idle_s,
        ),
        followers=None if workers is None else lambda v: workers.caught_up(v, FOLLOW_S),
        envs_on_nodes=settings.backend == "ray",
    )
    holder = server_id(settings.server_id_file)
    sealed = SealedSnapshots(secret_store.cipher)
    leadership = Leadership(db, fenced, controller, bus, sealed, holder, clock, settings.leader)
    artifacts = ArtifactStore(settings.artifacts_location, settings.artifact_copies_dir)
    registry = Registry(db, clock, artifacts, environment_details, source_policy(settings))
    install = partial(install_package, envs_root=settings.envs_dir, sandbox=sandbox)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        tokens=tokens,
        registry=registry,
        artifact_copies=copies,
        garden=Garden(registry, settings.garden_dir, install),
        controller=controller,
        bus=bus,
        sealed_snapshots=sealed,
        secrets=secret_store,
        metrics=metrics,
        throughput=calibrations,
        sandbox=sandbox,
        egress=egress_of(settings),
        images=images,
        server_id=holder,
    )

    usage_writer = UsageWriter(gateway.recorder.usage, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.log(logging.WARNING if sandbox.missing else logging.INFO, sandbox.describe())
        log.info("images: %s", images.missing or f"run with {shlex.join(images.command)}")
        log.info(backend.describe())
        calibrations.start()  # asked by the API on every server, leading or not
        await leadership.start()  # a leader's routes and tokens are known before a query
        usage_writer.start()
        freeze_startup_heap()
        try:
            yield
        finally:
            await leadership.close()
            await controller.close()
            await gateway.close()
            await usage_writer.close()

    api = FastAPI(
        title="berth",
        version=berth.__version__,
        description="Self-hosted model serving, wire-compatible with Databricks Model Serving.",
        openapi_url="/api/2.0/openapi.json",
        docs_url="/api/2.0/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.services = services
    install_error_handlers(api)
    api.include_router(health.router)
    protected = APIRouter(dependencies=[Depends(current_principal)])
    protected.include_router(models.router)
    protected.include_router(provisioned.router)  # before endpoints': /pt is no endpoint name
    protected.include_router(endpoints.router)
    protected.include_router(dataplane.router)
    protected.include_router(leader.router)
    protected.include_router(envs.router)
    protected.include_router(garden.router)
    protected.include_router(secrets.router)
    protected.include_router(permissions.router)
    protected.include_router(usage.router)
    protected.include_router(metrics_routes.router)
    protected.include_router(payloads.router)
    protected.include_router(endpoint_docs.router)
    protected.include_router(scim.router)
    protected.include_router(token_routes.router)
    api.include_router(protected)
    mount_console(api)
    return Server(
        app=Dispatch(
            gateway,
            BodyCap(
                DefaultJsonContentType(api),
                settings.server.max_body_bytes,
                settings.registry.max_upload_bytes + (1 << 20),  # the form around the file
            ),
        ),
        services=services,
        admin=admin,
    )
