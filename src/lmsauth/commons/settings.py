"""Commons' own settings, read from ``LMSAUTH_COMMONS_*`` variables.

They live beside the service rather than in ``lmsauth.settings`` so that Commons can be
deployed alone with nothing but its own package and ``core``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonsSettings(BaseSettings):
    """Lifetimes and windows; each has a default that is safe for local use."""

    model_config = SettingsConfigDict(env_prefix="LMSAUTH_COMMONS_", extra="ignore")

    session_lifetime_seconds: int = Field(
        default=12 * 3600, gt=0, description="How long a Commons session lives, from its creation."
    )
    jwt_max_age_seconds: int = Field(
        default=300, gt=0, description="How old a Canvas JWT's iat may be at POST /api/sessions."
    )
    lti_timestamp_window_seconds: int = Field(
        default=300, gt=0, description="How far an LTI launch's oauth_timestamp may be from now."
    )
    clock_skew_seconds: int = Field(
        default=30, ge=0, description="How far in the future an iat or timestamp may be."
    )

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(seconds=self.session_lifetime_seconds)

    @property
    def jwt_max_age(self) -> timedelta:
        return timedelta(seconds=self.jwt_max_age_seconds)

    @property
    def lti_timestamp_window(self) -> timedelta:
        return timedelta(seconds=self.lti_timestamp_window_seconds)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)
