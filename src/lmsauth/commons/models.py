"""Commons' tables: accounts and their settings, LTI consumers, users, curators, sessions, and
the replay records (launch nonces, used JWTs).

Replay records live in the database with unique constraints, so that every instance of a
deployment refuses a nonce or a JWT that any instance has already accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime


def _public_id() -> str:
    return uuid.uuid4().hex


class CommonsAccount(Base):
    """An institution in Commons; its settings are copied into every session object (C4)."""

    __tablename__ = "commons_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=_public_id)
    name: Mapped[str] = mapped_column(String(255))
    can_share_public: Mapped[bool] = mapped_column(Boolean, default=True)
    can_show_public: Mapped[bool] = mapped_column(Boolean, default=True)
    show_curated_resources_first: Mapped[bool] = mapped_column(Boolean, default=False)
    show_federal_standards: Mapped[bool] = mapped_column(Boolean, default=True)
    show_state_standards: Mapped[bool] = mapped_column(Boolean, default=False)
    state_standard: Mapped[str] = mapped_column(String(4), default="NONE")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class LtiConsumer(Base):
    """An LTI 1.1 consumer key and its shared secret (kept sealed, see ``sealing``)."""

    __tablename__ = "commons_lti_consumers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("commons_accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    consumer_key: Mapped[str] = mapped_column(String(255), unique=True)
    shared_secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CommonsUser(Base):
    """A Canvas user as Commons knows them: created by their first LTI launch."""

    __tablename__ = "commons_users"
    __table_args__ = (UniqueConstraint("account_id", "canvas_api_domain", "canvas_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(600), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("commons_accounts.id", ondelete="CASCADE"))
    canvas_user_id: Mapped[str] = mapped_column(String(64))
    canvas_api_domain: Mapped[str] = mapped_column(String(255))
    lti_user_id: Mapped[str] = mapped_column(String(255))
    tool_consumer_instance_guid: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(255), default="")
    avatar_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    locale: Mapped[str] = mapped_column(String(32), default="en")
    prefers_high_contrast: Mapped[bool] = mapped_column(Boolean, default=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    first_launch_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_launch_at: Mapped[datetime] = mapped_column(UTCDateTime)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CommonsCurator(Base):
    """A user who curates their account's resources (``isAccountCurator``)."""

    __tablename__ = "commons_curators"
    __table_args__ = (UniqueConstraint("account_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("commons_accounts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("commons_users.id", ondelete="CASCADE"), index=True)


class CommonsSession(Base):
    """A Commons session: from an LTI launch (a browser) or from ``POST /api/sessions``.

    The id is random and kept only as a digest; ``csrf_token`` guards the terms form.
    """

    __tablename__ = "commons_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("commons_users.id", ondelete="CASCADE"), index=True)
    origin: Mapped[str] = mapped_column(String(10))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LtiNonce(Base):
    """An accepted launch nonce; RFC 5849 3.3: never accepted twice for one consumer."""

    __tablename__ = "commons_lti_nonces"
    __table_args__ = (UniqueConstraint("consumer_id", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("commons_lti_consumers.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class UsedJwt(Base):
    """A Canvas JWT already traded for a session, by the digest of its signing input
    (``header.payload``), until its ``iat`` is too old anyway."""

    __tablename__ = "commons_used_jwts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


__all__ = [
    "CommonsAccount",
    "CommonsCurator",
    "CommonsSession",
    "CommonsUser",
    "LtiConsumer",
    "LtiNonce",
    "UsedJwt",
]
