"""All configuration, read from ``LMSAUTH_*`` environment variables.

The CLI and the server build their settings the same way, so a key created by the CLI is
seen by a running server that shares the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Profile(StrEnum):
    """How closely to follow Canvas versus the OAuth 2.0 Security BCP (RFC 9700)."""

    canvas = "canvas"
    strict = "strict"


class Settings(BaseSettings):
    """Every setting has a default that is safe for local use."""

    model_config = SettingsConfigDict(env_prefix="LMSAUTH_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".lmsauth"),
        description="Folder for the SQLite file and the generated secret key.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default: SQLite file in data_dir."
    )
    secret_key: str | None = Field(
        default=None,
        description="Encrypts signing keys at rest; default: generated once into data_dir.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL clients use to reach this server."
    )
    profile: Profile = Profile.canvas
    refresh_reuse_grace_seconds: float = Field(
        default=10.0,
        ge=0.0,
        le=300.0,
        description="Strict profile: how long after a refresh token rotated it may be presented "
        "again (a client racing itself, or retrying a lost answer) without revoking its family.",
    )
    redis_url: str | None = None
    redis_namespace: str = Field(
        default="lmsauth", description="Prefix of every Redis key, so deployments can share one Redis."
    )
    backend_timeout_seconds: float = Field(
        default=5.0,
        description="Connect and command timeout for the database and Redis; past it a request gets 503.",
    )
    key_publish_ahead_seconds: float = Field(
        default=864_000.0,
        description="How long a new signing key is published before it signs: the longest JWKS "
        "max-age we send (Canvas's, 10 days), so every cache that honours it knows the key.",
    )
    key_retire_after_seconds: float = Field(
        default=3_900.0,
        description="How long a key stays published after a newer one took over signing: the "
        "longest JWT it signed (3599 s) plus 5 minutes for clock skew.",
    )
    key_rotation_days: float = Field(
        default=90.0, description="Rotate the signing key automatically at this age (0: never)."
    )
    identity_signing_alg: Literal["RS256", "ES256", "EdDSA"] = Field(
        default="RS256",
        description="The algorithm of the Identity Service's tokens; Canvas's JWTs stay RS256.",
    )

    @property
    def signing_algorithms(self) -> tuple[str, ...]:
        """The algorithms the key ring keeps a signing key for: Canvas's RS256 and the identity
        tokens' (the same on every instance that shares these settings, whatever it serves)."""
        return tuple(dict.fromkeys(("RS256", self.identity_signing_alg)))

    commons_path: str = "/commons"
    services: str = Field(default="all", description="Which services to run: all, or e.g. canvas,commons.")
    cleanup_interval_seconds: float = 60.0
    dap_object_store: Literal["auto", "files", "database"] = Field(
        default="auto",
        description="Where DAP job output files live: files (in data_dir), database (every instance "
        "over one database reaches them), or auto: files with SQLite, database otherwise.",
    )
    dap_rows_per_object: int = Field(
        default=500_000, ge=1, description="The most rows in one DAP output file (object)."
    )
    dap_job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a DAP job's worker may go without showing progress before another "
        "instance takes the job over (its instance died or was stopped).",
    )
    dap_job_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often an idle instance looks for waiting DAP jobs."
    )
    dap_answer_wait_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=30.0,
        description="How long POST .../data waits for its job to finish before answering with the "
        "job as it is (0: at once, waiting, as the real API does). A finished job spares the dap "
        "client its 5-second polls (tests, the emulator).",
    )
    dap_url_seconds: int = Field(
        default=900, ge=1, le=86_400, description="How long a DAP object URL works (spec: about 15 minutes)."
    )
    dap_change_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="How long the change log of exported tables is kept; an incremental query "
        "with an older since gets SnapshotRequired.",
    )
    gc_freeze: bool = Field(
        default=False,
        description="After start-up, move every object built so far out of the cyclic garbage "
        "collector's sight (gc.freeze), which shortens its longest pauses; `lmsauth serve` turns it on.",
    )
    log_level: str = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="auto: text when stderr is a terminal, else one JSON object per line.",
    )
    metrics: bool = Field(default=True, description="Count requests and serve GET /metrics (Prometheus).")
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token /metrics requires; unset: /metrics answers only loopback callers.",
    )
    max_body_bytes: int = 1_048_576
    # Slow and greedy clients (README "Operations": a reverse proxy in front bounds them first).
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this, from the connection's "
        "start or the request's first byte; else the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request's body must arrive within this once the app reads it; else 408 "
        "and the connection is closed.",
    )
    max_header_bytes: int = Field(
        default=32_768, ge=1024, description="A request line and headers larger than this get 400."
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, description="An idle keep-alive connection is closed after this."
    )
    max_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Per server process: past this many open connections or requests in flight, "
        "a new request gets 503 (uvicorn's limit_concurrency).",
    )
    trust_proxy_headers: bool = False
    # Rate limits (core.ratelimit; docs/settings.md, "Rate limits"), counted in Redis when it is configured.
    rate_limits: bool = Field(default=True, description="off: no rate limit is counted or enforced.")
    rate_limit_api_high_water_mark: float = Field(
        default=700.0, gt=0, description="Canvas API: a token's bucket is full at this level (Canvas: 700)."
    )
    rate_limit_api_maximum: float = Field(
        default=800.0, gt=0, description="Canvas API: the level never rises above this (Canvas: 800)."
    )
    rate_limit_api_outflow: float = Field(
        default=10.0, gt=0, description="Canvas API: units the bucket leaks per second (Canvas: 10)."
    )
    rate_limit_api_request_cost: float = Field(
        default=0.01,
        ge=0,
        description="Canvas API: what one request adds to its token's bucket, in Canvas's unit "
        "(seconds of server time): the default lets a token sustain 1,000 requests a second.",
    )
    rate_limit_api_status: int = Field(
        default=403,
        description="Canvas API refusal: 403 (Canvas's documented, long-standing answer) or 429 "
        "(what Canvas answers since October 2025, and what canvasapi 3.6 turns into RateLimitExceeded).",
    )
    rate_limit_client_requests: int = Field(
        default=6000,
        gt=0,
        description="Token endpoints: requests per client per window, counted only for requests "
        "that authenticated as that client.",
    )
    rate_limit_client_window_seconds: float = Field(default=60.0, gt=0)
    rate_limit_client_failures_per_address: int = Field(
        default=60,
        gt=0,
        description="Token endpoints: failed client authentications per client address per failure "
        "window; past it the address is refused (429) before its credentials are checked.",
    )
    rate_limit_client_failures_per_client: int = Field(
        default=60,
        gt=0,
        description="Token endpoints: failed authentications naming one client per failure window; "
        "past it further failures answer 429, while the real client's requests go on.",
    )
    rate_limit_client_failure_window_seconds: float = Field(
        default=60.0, gt=0, description="Token endpoints: how long failed client authentications are counted."
    )
    rate_limit_session_requests: int = Field(
        default=2500,
        gt=0,
        description="Commons session API: requests per session per window (Commons: 2500/hour).",
    )
    rate_limit_session_window_seconds: float = Field(default=3600.0, gt=0)
    rate_limit_authorize_requests: int = Field(
        default=600,
        gt=0,
        description="GET /login/oauth2/auth: requests per client address per window; past it, 429.",
    )
    rate_limit_authorize_window_seconds: float = Field(default=60.0, gt=0)
    rate_limit_login_delay_after: int = Field(
        default=3,
        ge=0,
        description="Login form: failed attempts per account before each further one is delayed.",
    )
    rate_limit_login_lock_after: int = Field(
        default=10, gt=0, description="Login form: failed attempts per account before it is locked."
    )
    rate_limit_login_ip_delay_after: int = Field(
        default=30, ge=0, description="Login form: failed attempts per client address before delays."
    )
    rate_limit_login_ip_lock_after: int = Field(
        default=100, gt=0, description="Login form: failed attempts per client address before it is locked."
    )
    rate_limit_login_delay_seconds: float = Field(
        default=1.0, ge=0, description="Login form: the first delay; it doubles with every further failure."
    )
    rate_limit_login_max_delay_seconds: float = Field(default=8.0, ge=0)
    rate_limit_login_lock_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Login form: how long failures are counted, and how long a lock lasts.",
    )
    lti_allow_private_jwk_urls: bool = Field(
        default=False,
        description="Let LTI tools' JWK URLs name loopback or private addresses (a tool on this "
        "machine or network). Off, such a URL is refused: this server would otherwise fetch any "
        "address a developer key names. The emulator allows them by itself.",
    )
    emulator: bool = Field(
        default=False,
        description="Emulator mode: the /_emulator/ control API (clock, faults, traffic, state).",
    )
    emulator_allow_remote: bool = Field(
        default=False, description="Let the emulator (services and control API) answer other hosts."
    )
    emulator_seed: str | None = Field(
        default=None,
        description="A seed file the emulator loads at start and restores on reset ('demo': the built-in).",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_metrics_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("LMSAUTH_PUBLIC_URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _emulator_is_not_strict(self) -> Settings:
        if self.emulator and self.profile is Profile.strict:
            raise ValueError(
                "LMSAUTH_EMULATOR cannot be combined with LMSAUTH_PROFILE=strict: an emulator that "
                "moves time and injects faults has no place where the strict profile is wanted"
            )
        return self

    @field_validator("rate_limit_api_status")
    @classmethod
    def _canvas_throttle_status(cls, value: int) -> int:
        if value not in (403, 429):
            raise ValueError("LMSAUTH_RATE_LIMIT_API_STATUS must be 403 or 429")
        return value

    @model_validator(mode="after")
    def _bucket_can_fill(self) -> Settings:
        if self.rate_limit_api_maximum < self.rate_limit_api_high_water_mark:
            raise ValueError(
                "LMSAUTH_RATE_LIMIT_API_MAXIMUM must be at least LMSAUTH_RATE_LIMIT_API_HIGH_WATER_MARK: "
                "a bucket that can never reach its high water mark never refuses anything"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'lmsauth.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def hsts(self) -> bool:
        """Clients reach this server over https: every response tells browsers to keep to it
        (``Strict-Transport-Security``). Never over http, where a browser ignores it anyway and
        a developer's ``localhost`` must not be pinned to https."""
        return self.public_url.startswith("https://")

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept (mode 0600) in ``data_dir``."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.ensure_data_dir()
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value

    def ensure_data_dir(self) -> None:
        """Create ``data_dir`` for this user only (0700): it holds the SQLite file, with its
        password hashes, and the generated secret key. A folder that exists keeps its mode,
        the operator's choice (a volume, systemd's ``StateDirectory=``, a folder shared with a
        backup agent), but one that others may read is logged as a warning."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            mode = self.data_dir.stat().st_mode & 0o777
            if mode & 0o077 and self.data_dir not in _WARNED_WIDE:
                _WARNED_WIDE.add(self.data_dir)
                log.warning(
                    "the data folder %s has mode %o: others on this machine may read its password "
                    "hashes and secret key; chmod 700 it unless that is intended",
                    self.data_dir,
                    mode,
                )


log = logging.getLogger("lmsauth.settings")
_WARNED_WIDE: set[Path] = set()  # warn once a process, not at every start-up step
