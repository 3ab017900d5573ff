"""Service configuration: every knob is an environment variable prefixed `SEQDREAM_`."""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from seqdream.builtin import BUILTIN_MODEL
from seqdream.numbers import MAX_ACTIVE, RATE_PER_MIN, size_pair

DEFAULT_MODEL = BUILTIN_MODEL  # offline, CPU-sized; e.g. black-forest-labs/FLUX.2-klein-4B on a GPU
# Upper bounds: generous, and within what the clocks, timers and columns that take each value can hold.
DAY_S = 86_400.0
TIB = 2**40
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def storage_location(url: str) -> tuple[str, str, str]:
    """("file", folder, "") or ("s3", bucket, prefix) of a SEQDREAM_STORAGE_URL; a ValueError for any other."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" in the host
        raise ValueError(
            f"unsupported SEQDREAM_STORAGE_URL {url!r} ({exc}): use file:///path or s3://bucket/prefix"
        ) from None
    if parts.scheme == "file" and parts.path:
        return "file", parts.path, ""
    if parts.scheme == "s3" and parts.netloc:
        return "s3", parts.netloc, parts.path
    raise ValueError(f"unsupported SEQDREAM_STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix")


class Settings(BaseSettings):
    # No infinity or NaN: every number is a duration, a count or a size that timers and columns must hold.
    model_config = SettingsConfigDict(env_prefix="SEQDREAM_", env_file=".env", extra="ignore", allow_inf_nan=False)

    # Where things live.
    data_dir: Path = Path("seqdream-data")
    database_url: str | None = None  # default: sqlite file inside data_dir
    storage_dir: Path | None = None  # default: data_dir/blobs
    storage_url: str | None = None  # s3://bucket/prefix to keep blobs in S3 instead of storage_dir
    s3_endpoint_url: str | None = None  # for S3-compatible servers (MinIO, Ceph, R2 ...)
    public_base_url: str | None = None  # default: derived from each request

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    auth_disabled: bool = False  # development only: accept requests without a key
    log_level: str = "info"

    threads: int | None = Field(None, ge=1, le=1024)  # CPU threads per pool; default: the available cores
    threads_follow_load: bool = True  # on CPU, fewer model threads while other processes keep cores busy

    # Jobs.
    inline_workers: int = Field(1, ge=0, le=16)
    sync_timeout_s: float = Field(300.0, gt=0, le=DAY_S)
    job_lease_s: float = Field(60.0, gt=0, le=DAY_S)  # a processing job silent this long is taken back
    job_max_attempts: int = Field(3, ge=1, le=100)
    poll_interval_s: float = Field(0.2, gt=0, le=60)
    # How often a process that runs workers reports them in the database (gone after 4 silent beats).
    worker_beat_s: float = Field(10.0, ge=0.1, le=600)
    shutdown_grace_s: float = Field(20.0, ge=0, le=DAY_S)  # on SIGINT/SIGTERM running jobs may finish this long
    # A job handed back after an outage runs again no sooner than this.
    storage_retry_s: float = Field(2.0, gt=0, le=3600)
    # Attempts a job may spend on outages of the database or storage (workers pause while one lasts,
    # so each outage costs a running job one attempt) before it fails with the outage as its error.
    job_max_dependency_attempts: int = Field(12, ge=1, le=1000)
    retention_hours: float = Field(168.0, gt=0, le=100 * 366 * 24)  # outputs and uploads are deleted after this

    # Webhooks (WaveSpeed's `webhook`): signed POSTs from a durable outbox, retried with back-off.
    webhook_timeout_s: float = Field(10.0, gt=0, le=600)
    webhook_concurrency: int = Field(4, ge=1, le=64)  # deliveries in flight per process
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_retry_base_s: float = Field(15.0, gt=0, le=6 * 3600)  # waits 15 s, 1 min, 4 min ... (x4, at most 6 h)
    webhook_poll_s: float = Field(1.0, gt=0, le=60)

    # Engine.
    engine: str = "flux2-klein"
    engine_retry_s: float = Field(30.0, gt=0, le=3600)  # a model that failed to load is tried again this often
    model: str = DEFAULT_MODEL  # "builtin", a hub id or a local folder
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$")  # cuda:N picks one GPU
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Sampling: unset means the model's own defaults (its seqdream.json, else by model kind).
    native_resolution: int | None = Field(None, ge=64, le=4096)  # renders at most ~this squared, aspect kept
    num_inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0, le=100)
    guidance_until: float | None = Field(None, gt=0, le=1)  # share of steps, from the first, that use CFG
    max_sequence_length: int | None = Field(None, ge=16, le=2048)
    max_batch: int = Field(4, ge=1, le=14)  # images denoised together in a group
    # Tasks of single images from the prompt alone at one size run together, up to this many (unset:
    # max_batch; 1: never), taking those queued when a worker claims; while tasks arrive together (the
    # worker's last run was a batch) a batch waits up to batch_wait_s for more. A lone task never waits.
    batch_tasks: int | None = Field(None, ge=1, le=14)
    batch_wait_s: float = Field(0.05, ge=0, le=5)
    preview_every_s: float = Field(0.5, ge=0, le=60)  # a running render's picture this often; 0: none
    preview_decoder: str | None = None  # a tiny decoder (AutoencoderTiny) for previews of larger renders
    progress_every_s: float = Field(0.5, gt=0, le=60)  # a running task's steps are recorded this often at most
    # Speed-ups, off by default except where a model folder asks (see seqdream/engines/acceleration.py).
    compile: bool = False  # torch.compile the transformer's blocks, warmed up at load
    compile_warmup: Annotated[list[str], NoDecode] = ["1024*1024"]  # sizes compiled before the first task
    quantize: Literal["none", "int8", "fp8"] = "none"  # torchao: fp8 on Ada/Hopper, int8 weight-only anywhere
    # MagCache skips predictable steps of guided many-step models; auto: the model folder's choice
    # (the built-in model's seqdream.json turns it on), else none. Unset threshold: the model's, else 0.06.
    cache: Literal["auto", "none", "magcache"] = "auto"
    cache_threshold: float | None = Field(None, gt=0, le=1)  # higher skips more steps, at some cost in detail

    # Outputs and safety.
    output_format: Literal["jpeg", "png", "webp"] = "jpeg"
    output_quality: int = Field(95, ge=1, le=100)
    nsfw_check: bool = True
    nsfw_threshold: float = Field(0.5, ge=0, le=1)

    # Reference images in.
    max_image_bytes: int = Field(30 * 1024 * 1024, gt=0, le=TIB)
    max_image_pixels: int = Field(6000 * 6000, gt=0, le=TIB)
    fetch_connect_timeout_s: float = Field(5.0, gt=0, le=600)
    fetch_read_timeout_s: float = Field(20.0, gt=0, le=600)
    fetch_total_timeout_s: float = Field(60.0, gt=0, le=3600)  # a whole fetch, redirects included
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    fetch_allow_networks: Annotated[list[str], NoDecode] = []  # CIDRs allowed despite being private
    max_upload_bytes: int = Field(30 * 1024 * 1024, gt=0, le=TIB)
    max_request_bytes: int = Field(256 * 1024 * 1024, gt=0, le=TIB)  # JSON bodies carry base64 images

    # Sharing between keys (a key's own limits, set with `seqdream keys update`, override these).
    key_rate_per_min: int = Field(600, ge=0, le=RATE_PER_MIN.high)  # submits per key per minute; 0: unlimited
    key_max_active: int = Field(1000, ge=0, le=MAX_ACTIVE.high)  # queued + running tasks per key; 0: unlimited
    metrics_key_labels: int = Field(0, ge=0, le=100)  # label usage metrics by key name for this many keys

    # Provenance: every output says it was AI-made.
    provenance_c2pa: bool = True  # a signed C2PA manifest in each output file
    provenance_watermark: bool = True  # an invisible watermark in each output's pixels
    provenance_service_id: str = Field("seqdream", min_length=1, max_length=128)  # names the watermark's service
    c2pa_sign_cert: Path | None = None  # PEM chain, signing certificate first; default: a local CA in data_dir
    c2pa_sign_key: Path | None = None  # its PEM private key
    c2pa_sign_alg: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = "es256"
    c2pa_trust_anchors: Path | None = None  # PEM CA certificates `verify` trusts (besides the local CA)

    @field_validator("fetch_allow_networks", "compile_warmup", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _check_networks(cls, networks: list[str]) -> list[str]:
        for cidr in networks:
            ip_network(cidr, strict=False)  # its ValueError names the value
        return networks

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, level: str) -> str:
        if level.lower() not in LOG_LEVELS:
            raise ValueError(f"{level!r} is not one of {', '.join(LOG_LEVELS)}")
        return level.lower()

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _check_http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - a port that is no number, or out of range, raises here
        except ValueError as exc:
            raise ValueError(f"{url!r} is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL with a host")
        return url

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, url: str | None) -> str | None:
        if url is not None:
            try:
                make_url(url)
            except (ArgumentError, ValueError) as exc:
                raise ValueError(f"not a database URL ({exc}); e.g. postgresql+psycopg://user:pass@host/db") from None
        return url

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, url: str | None) -> str | None:
        if url:
            storage_location(url)
        return url

    @field_validator("compile_warmup")
    @classmethod
    def _check_sizes(cls, sizes: list[str]) -> list[str]:
        for size in sizes:
            width, height = size_pair(size) or (0, 0)
            if not (64 <= width <= 4096 and 64 <= height <= 4096):
                raise ValueError(f"{size!r} is not WIDTH*HEIGHT with sides from 64 to 4096")
        return sizes

    @property
    def warmup_sizes(self) -> tuple[tuple[int, int], ...]:
        return tuple(size_pair(size) or (0, 0) for size in self.compile_warmup)

    @cached_property
    def allowed_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(cidr, strict=False) for cidr in self.fetch_allow_networks]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'seqdream.db').resolve()}"

    @property
    def own_base_url(self) -> str:
        """Where this service is reached when no request says so (webhooks sent by a worker)."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "blobs"
