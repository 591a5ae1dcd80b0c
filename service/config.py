"""Service settings: every limit and knob, read from ``IMGFILTER_*`` environment variables.

``Settings`` is the one place a number that shapes behaviour lives. Build it with keyword
arguments in tests (they beat the environment); ``get_settings()`` is the cached instance the
app uses and the FastAPI dependency tests override.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "IMGFILTER_"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs granted by this process's cgroup CPU quota (a container's ``--cpus``), or None.

    cgroup v2: ``<root>/cpu.max`` holds ``"<quota> <period>"``, ``"max"`` meaning no quota.
    cgroup v1: ``<root>/cpu/cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, ``-1`` meaning no
    quota (Docker mounts the container's own cgroup there in both versions). An unreadable or
    malformed file counts as no quota.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus(cgroup: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup CPU quota.

    ``os.cpu_count()`` reports the host's CPUs even inside a container limited to fewer, so
    worker and concurrency defaults would oversubscribe it. A quota of ``q`` CPUs
    (:func:`cgroup_cpu_quota`) caps the count at ``max(1, ceil(q))``.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    quota = cgroup_cpu_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class Settings(BaseSettings):
    """Limits and knobs of the service; each field is the env var ``IMGFILTER_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        validate_default=True,
    )

    # --- input limits -------------------------------------------------------------------
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes (413)."
    )
    max_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Largest decoded image, in pixels (width x height); also Pillow's bomb guard.",
    )
    max_kernel_side: int = Field(63, ge=1, le=255, description="Largest kernel side (rows/cols).")
    max_pool_size: int = Field(64, ge=1, le=1024, description="Largest pooling window side.")
    max_pipeline_steps: int = Field(16, ge=1, le=256, description="Most steps in one pipeline.")

    # --- output ----------------------------------------------------------------------------
    png_compress_level: int = Field(
        1,
        ge=0,
        le=9,
        description="zlib level of PNG output: 0 fastest/largest, 9 smallest/slowest.",
    )
    png_strategy: Literal["default", "filtered", "huffman", "rle"] = Field(
        "huffman",
        description="zlib strategy of PNG output; 'huffman' is fastest at nearly the best size.",
    )
    max_json_values: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="Most values (height x width x channels) in a JSON array answer (422 "
        "beyond: ask for .npy or PNG). Bounds the memory of serialising a large result.",
    )
    png_encoder: Literal["isal", "libdeflate", "libpng"] = Field(
        "isal",
        description="PNG encoder. 'isal': PNG framing here around ISA-L's zlib stream (its "
        "levels stop at 3: png_compress_level 3..9 give 3); 'libdeflate': the same framing "
        "around libdeflate's (smaller at level 6 and up, about half the speed at level 1). "
        "Both: filters none/sub/up, 'auto' takes 'up' for Paeth, png_strategy does not apply. "
        "'libpng': libpng through imagecodecs. Timings: docs/performance.md.",
    )
    png_filter: Literal["auto", "none", "sub", "up", "avg", "paeth", "adaptive"] = Field(
        "auto",
        description="PNG row filter. 'auto': 'none' when a quarter or more of the bytes are 0 "
        "(edge maps), else 'paeth'; 'adaptive' chooses per row (Pillow's way), the slowest.",
    )

    # --- work bounds -----------------------------------------------------------------------
    max_concurrency: int = Field(
        1,
        ge=1,
        description="Heavy operations running at once per worker process. The workers spread "
        "over the CPUs; more threads per worker contend for the GIL and widen the latency "
        "tail. Raise it when single requests are slow (longer than the queue timeout).",
    )
    max_queue: int = Field(
        32,
        ge=0,
        description="Requests allowed to wait for a slot before 503 is answered (per worker; "
        "32 lets 32 keep-alive clients queue on one worker without a 503).",
    )
    queue_timeout_s: float = Field(
        2.0, gt=0, description="Longest wait for a slot before 503 + Retry-After."
    )
    processing_timeout_s: float = Field(
        30.0, gt=0, description="Longest processing time before 504 is answered."
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest time to receive a request body once the request is admitted; "
        "408 beyond it (a slow sender holds one of the worker's admissions meanwhile).",
    )

    idle_trim_mib: int = Field(
        32,
        ge=0,
        description="When a worker falls idle with its RSS grown by this many MiB since its "
        "last trim, return freed heap memory to the OS (glibc malloc_trim, in a thread, at "
        "most once a second); 0 = never.",
    )

    # --- process ---------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address of `imgfilter serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `imgfilter serve`.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated proxy addresses or networks whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (the client address in logs); '*' believes any peer, "
        "so only behind a proxy that overwrites X-Forwarded-For and nothing else can connect.",
    )
    workers: int = Field(
        default_factory=available_cpus,
        ge=1,
        le=64,
        description="Worker processes of `imgfilter serve`.",
    )
    rebalance_connections: bool = Field(
        True,
        description="With several workers, a worker that has 2 or more requests more than a "
        "sibling answers `Connection: close`, so the client reconnects and the kernel may "
        "place the connection on a less busy worker (keep-alive clients otherwise stay "
        "where the hash put them).",
    )
    log_level: LogLevel = Field("info", description="Log level of the JSON request log.")
    keep_alive_s: int = Field(
        5, ge=1, le=3600, description="Idle HTTP keep-alive timeout of a connection, seconds."
    )
    graceful_timeout_s: int = Field(
        20,
        ge=1,
        le=3600,
        description="After SIGTERM, longest wait for in-flight requests before they are cancelled.",
    )
    shutdown_delay_s: float = Field(
        0.0,
        ge=0,
        le=300,
        description="After SIGTERM, keep serving this long with /readyz at 503 before closing "
        "the listener (lets a load balancer or Kubernetes stop routing first).",
    )
    metrics_enabled: bool = Field(
        True, description="Record Prometheus metrics and serve them at GET /metrics."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed CORS origins; empty (default) = CORS off."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="If set, processing endpoints require one of these keys (Bearer/X-API-Key).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept ``a,b,c`` as well as a JSON list from the environment."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _check_limits(self) -> Self:
        if self.max_kernel_side**2 > self.max_pixels:
            raise ValueError("max_kernel_side squared must not exceed max_pixels")
        if self.max_pool_size**2 > self.max_pixels:
            raise ValueError("max_pool_size squared must not exceed max_pixels")
        if any(len(key) < 16 for key in self.api_keys):
            raise ValueError("every API key must be at least 16 characters long")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, cached; ``get_settings.cache_clear()`` after env changes."""
    return Settings()
