"""The one settings root of a berth server, read from ``BERTH_*`` environment variables.

Built once by the composition root and passed down; nothing reads the environment elsewhere.
Nested sections use ``__``: ``BERTH_SERVER__PORT=9000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from berth.core.artifact_copies import is_url, local_dir


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of the HTTP server (0 = any).")
    max_body_bytes: int = Field(
        1 << 20,
        gt=0,
        description="Largest control-plane request body in bytes (413 past it); artifact "
        "uploads have BERTH_REGISTRY__MAX_UPLOAD_BYTES.",
    )
    workspace_id: str = Field(
        "1000000000000001",
        description="Workspace id announced by /.well-known/databricks-config.",
    )
    gateway_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Data-plane worker processes sharing host:port (SO_REUSEPORT) in front of "
        "the control process, which then listens on 127.0.0.1 only; 0 = one process serves "
        "everything. Past 1, rate-limit counters need Redis: BERTH_REDIS_URL, or a private "
        "redis-server started when one is on PATH.",
    )


class AutoscalingSettings(BaseModel):
    """How served entities scale between the bounds of their config (``BERTH_AUTOSCALING__*``)."""

    target_utilization: float = Field(
        0.7, gt=0, le=1, description="Share of a replica's concurrent slots to keep busy."
    )
    upscale_delay_s: float = Field(
        2.0, ge=0, description="How long more replicas must be wanted before they start."
    )
    downscale_delay_s: float = Field(
        60.0, ge=0, description="How long fewer replicas must be wanted before some stop."
    )
    smoothing_s: float = Field(
        2.0, gt=0, description="Time constant of the moving average of concurrent requests."
    )
    scale_to_zero_idle_s: float = Field(
        1800.0,
        gt=0,
        description="Idle time after which a scale-to-zero entity stops its last replica "
        "(a served entity's scale_to_zero_idle_seconds overrides it).",
    )
    cold_start_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long a request waits for an entity scaled to zero to start a replica "
        "before it is answered 503 with Retry-After.",
    )
    band_queue_s: float = Field(
        5.0,
        gt=0,
        description="How long the requests queued for an open LLM's provisioned throughput may "
        "take to be admitted at its current band; a request past it is answered 429 "
        "REQUEST_LIMIT_EXCEEDED with Retry-After. What waits makes the autoscaler add replicas "
        "(and band) up to the maximum.",
    )


class SandboxSettings(BaseModel):
    """How model code is isolated (``BERTH_SANDBOX__*``); see README's "What model code can
    touch"."""

    mode: Literal["auto", "bwrap", "none"] = Field(
        "auto",
        description="auto: a bubblewrap filesystem view when bubblewrap works here, else none "
        "(said at startup); bwrap: refuse to start without it; none: no filesystem view.",
    )
    run_as: str | None = Field(
        None,
        description="When berth runs as root: the user (name or uid) model code runs as. "
        "Unset: one unprivileged uid per model version, taken from uid_range_start.",
    )
    uid_range_start: int = Field(
        61184, ge=1000, description="First uid given to model code when run_as is unset."
    )
    uid_range_size: int = Field(4096, ge=1, description="How many uids that range holds.")
    network: bool = Field(True, description="Whether model code may open network connections.")
    pass_env: list[str] = Field(
        default_factory=list,
        description="Names of the server's environment variables model code may also see "
        "(besides PATH, LANG, LC_*, TZ, proxy and CA variables); BERTH_* never pass.",
    )


class RegistrySettings(BaseModel):
    """What model registration may read (``BERTH_REGISTRY__*``)."""

    source_roots: list[Path] = Field(
        default_factory=list,
        description="Folders on the server's machine that every user may register models "
        "from (admins may use any path); $BERTH_HOME is never read, whatever this says.",
    )
    source_protocols: list[str] = Field(
        default_factory=lambda: ["https", "s3", "gs", "gcs", "abfs", "az"],
        description="URI schemes registration may fetch artifacts from.",
    )
    source_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts registration may fetch from although they resolve to a loopback, "
        "link-local or private address.",
    )
    max_upload_bytes: int = Field(
        2 << 30, gt=0, description="Largest artifact upload or download, in bytes (413 past it)."
    )
    max_archive_members: int = Field(
        20_000, gt=0, description="Most files and folders an artifact archive may hold."
    )
    max_extracted_bytes: int = Field(
        8 << 30, gt=0, description="Largest size an artifact archive may unpack to, in bytes."
    )


class ProvidersSettings(BaseModel):
    """Where calls to external LLM providers may go (``BERTH_PROVIDERS__*``)."""

    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names or IPs (comma-separated in the variable) that provider base "
        "URLs may name although they are loopback, link-local or private, and that may use "
        "http: an operator's own proxy or test server.",
    )
    allow_http: bool = Field(False, description="Whether provider base URLs may use http.")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return (
            [h.strip() for h in value.split(",") if h.strip()] if isinstance(value, str) else value
        )


class QuotaSettings(BaseModel):
    """How much one user may ask of the server (``BERTH_QUOTAS__*``); admins are bound only by
    the per-entity cap."""

    replicas_per_entity: int = Field(
        16, ge=1, description="Most replicas one served entity may scale to."
    )
    replicas_per_user: int = Field(
        64, ge=1, description="Most replicas one user's endpoints may scale to, all together."
    )
    endpoints_per_user: int = Field(100, ge=1, description="Most serving endpoints per user.")
    models_per_user: int = Field(100, ge=1, description="Most registered models per user.")


class AccessSettings(BaseModel):
    """Who may do what beyond permissions (``BERTH_ACCESS__*``)."""

    code_execution: Literal["entitled", "all"] = Field(
        "entitled",
        description="Who may register model versions and deploy them, which runs their code: "
        "'entitled' = admins and holders of the run-model-code entitlement (SCIM); 'all' = "
        "every user (a single-user laptop).",
    )


class ReplicaSettings(BaseModel):
    """How replicas are watched once ready, the GPUs they may hold and what runs images
    (``BERTH_REPLICAS__*``)."""

    probe_period_s: float = Field(
        2.0, gt=0, description="Seconds between health probes of a ready replica."
    )
    probe_timeout_s: float = Field(2.0, gt=0, description="How long one health probe may take.")
    failure_threshold: int = Field(
        3,
        ge=1,
        description="Probes missed in a row before a ready replica (hung, not dead) leaves the "
        "routes and is replaced.",
    )
    gpus: str = Field(
        "auto",
        pattern=r"^(auto|none|\d+(,\d+)*)$",
        description="The GPUs replicas of GPU workload types may hold: auto (every "
        "/dev/nvidiaN of this host), none, or their indices, e.g. 0,1.",
    )
    container_runtime: str = Field(
        "auto",
        min_length=1,
        description="What runs container versions with an image_uri: auto (podman on PATH, "
        "when berth runs as root), none, or a podman command line with global flags, e.g. "
        "'podman --runtime runc'. Images come from the host's own storage (podman load, "
        "podman import); nothing is pulled.",
    )


class RaySettings(BaseModel):
    """Where the ray backend runs replicas (``BERTH_RAY__*``; with ``BERTH_BACKEND=ray``)."""

    address: str = Field(
        "auto",
        description="The Ray cluster's GCS address (host:port), or auto: RAY_ADDRESS, else "
        "a cluster already running on this machine.",
    )
    namespace: str = Field(
        "berth",
        min_length=1,
        description="The Ray namespace of the replicas' named actors; servers sharing one "
        "store share it.",
    )
    replica_cpus: float = Field(
        1.0, gt=0, description="The CPUs each replica's actor reserves on its node."
    )
    replica_memory_mb: int = Field(
        512,
        ge=0,
        description="The memory each replica's actor reserves on its node, in MiB, besides "
        "its model's weights (an open LLM's, as registration measured them).",
    )
    placement_timeout_s: float = Field(
        300.0,
        gt=0,
        description="How long a new replica may wait for a node with the CPUs and GPUs it asks "
        "before it fails (and its config update with it).",
    )
    work_dir: Path = Field(
        Path("/tmp/berth-ray"),
        description="Where on each node replicas keep their sandbox boxes and logs, and the "
        "node keeps its copies of artifacts and the environments it builds.",
    )


class CalibrationSettings(BaseModel):
    """How an open LLM's throughput chunk is measured (``BERTH_CALIBRATION__*``)."""

    measure_s: float = Field(
        8.0,
        gt=0,
        le=600,
        description="Wall time of the measured rounds of the reference workload, after one "
        "warm-up round (one round runs at least, however short this is).",
    )


class LeaderSettings(BaseModel):
    """The controller lease that servers sharing one store hold in turn (``BERTH_LEADER__*``)."""

    lease_s: float = Field(
        6.0,
        gt=0,
        le=300,
        description="How long the lease holds without a renewal: when the leading server dies, "
        "another takes over the controller after at most this (plus one follow_s).",
    )
    renew_s: float = Field(
        2.0, gt=0, le=100, description="How often the leading server renews its lease."
    )
    follow_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often a server that does not lead looks for the leader's newest "
        "routes in the store, and tries for the lease.",
    )

    @model_validator(mode="after")
    def _renewed_in_time(self) -> LeaderSettings:
        if self.renew_s * 2 > self.lease_s:
            raise ValueError(
                f"BERTH_LEADER__RENEW_S ({self.renew_s}) must be at most half of "
                f"BERTH_LEADER__LEASE_S ({self.lease_s}), so one missed renewal loses no lease"
            )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BERTH_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    home: Path = Field(
        Path("~/.berth"), description="Data directory: SQLite database, artifacts, admin token."
    )
    shared_dir: Path | None = Field(
        None,
        description="A directory every server sharing one store mounts at the same path (NFS, "
        "EFS, ...): inference tables and access logs go under it, so any server reads what all "
        "of them wrote. Unset: $BERTH_HOME.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store; default SQLite at $BERTH_HOME/berth.db. "
        "Use postgresql+psycopg://... to share one store between several servers.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Admin bearer token to create on first start; generated when unset."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that encrypts secret values at rest (AES-256-GCM): 32 random bytes in "
        "URL-safe base64, e.g. from `python -c 'import base64,os; "
        "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`. When unset, one is "
        "generated on first start into $BERTH_HOME/secret-key (mode 0600). Servers sharing one "
        "store must share this key; losing it makes the stored secrets unreadable.",
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="The server's log lines: JSON objects (with request ids) or text."
    )
    artifacts_uri: str | None = Field(
        None,
        description="Where model artifacts live: a directory (default $BERTH_HOME/artifacts), "
        "or any fsspec URL such as s3://bucket/berth. Servers sharing one store, and the "
        "nodes of a Ray cluster, must share it: a directory that each mounts at this same "
        "path, or a URL; each keeps copies of a URL's artifacts under $BERTH_HOME/artifact-"
        "copies (servers) or BERTH_RAY__WORK_DIR/artifacts (nodes).",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db shared by gateway processes for rate-limit counters; "
        "unset: counters live in this process.",
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="What runs replicas: local (sandboxed child processes of this server) or "
        "ray (detached actors on the Ray cluster BERTH_RAY__ADDRESS names).",
    )
    ray: RaySettings = Field(default_factory=RaySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def artifacts_location(self) -> str:
        """`artifacts_uri` as a URL, or as an absolute directory when it names one."""
        given = self.artifacts_uri
        if given is None:
            return str(self.home_dir / "artifacts")
        if is_url(given):
            return given.rstrip("/")
        return str(local_dir(given).expanduser().resolve())

    @property
    def artifact_copies_dir(self) -> Path:
        """This server's copies of artifacts kept at a URL (`berth.core.artifact_copies`)."""
        return self.home_dir / "artifact-copies"

    @property
    def data_dir(self) -> Path:
        """Where what every server reads back lives: ``$BERTH_SHARED_DIR``, else the home."""
        return self.home_dir if self.shared_dir is None else self.shared_dir.expanduser().resolve()

    @property
    def logs_dir(self) -> Path:
        """Endpoint access logs: ``<endpoint>/access-<host>.log``."""
        return self.data_dir / "logs"

    @property
    def inference_dir(self) -> Path:
        """Inference tables: ``<endpoint>/date=YYYY-MM-DD/part-*.parquet``."""
        return self.data_dir / "inference"

    @property
    def sandboxes_dir(self) -> Path:
        """Model versions' boxes: scratch homes and replica sockets (`berth.sandbox`)."""
        return self.home_dir / "boxes"

    @property
    def envs_dir(self) -> Path:
        return self.home_dir / "envs"

    @property
    def calibrations_dir(self) -> Path:
        """What each calibration's engine printed."""
        return self.home_dir / "calibrations"

    @property
    def garden_dir(self) -> Path:
        """The model garden's installed packages: ``<package>-<version>/``."""
        return self.home_dir / "garden"

    @property
    def admin_token_file(self) -> Path:
        return self.home_dir / "admin-token"

    @property
    def server_id_file(self) -> Path:
        """This server's id in the controller lease, kept across restarts: a server that
        restarts takes its own lease back at once, and the replicas with it."""
        return self.home_dir / "server-id"

    @property
    def secret_key_file(self) -> Path:
        return self.home_dir / "secret-key"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'berth.db'}"
