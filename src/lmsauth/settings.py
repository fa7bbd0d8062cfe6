"""All configuration, read from ``LMSAUTH_*`` environment variables.

The CLI and the server build their settings the same way, so a key created by the CLI is
seen by a running server that shares the environment.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
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
    commons_path: str = "/commons"
    services: str = Field(default="all", description="Which services to run: all, or e.g. canvas,commons.")
    cleanup_interval_seconds: float = 60.0
    log_level: str = "info"
    max_body_bytes: int = 1_048_576
    trust_proxy_headers: bool = False
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

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept (mode 0600) in ``data_dir``."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
