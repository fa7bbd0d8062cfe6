"""Canvas's tables: accounts, users and their logins, developer keys, tokens, codes, sessions."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime

# Canvas presents ids as "global ids": shard id x 10^13 + local id. This server is shard 1.
SHARD_OFFSET = 10_000_000_000_000


def global_id(local_id: int) -> int:
    return SHARD_OFFSET + local_id


def local_id(any_id: int) -> int:
    """Accept a global id of this shard or a plain local id, as Canvas's ``find_cached`` does."""
    return any_id - SHARD_OFFSET if SHARD_OFFSET < any_id < 2 * SHARD_OFFSET else any_id


def _uuid() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def _opaque_identifier() -> str:
    return secrets.token_hex(20)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=_uuid)
    # Canvas's ``Lti::Asset.opaque_identifier_for(account)``: LTI's ``context.id`` and the tail
    # of an account deployment's id (spec lti13.md 1.2).
    lti_context_id: Mapped[str] = mapped_column(String(40), unique=True, default=_opaque_identifier)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    sortable_name: Mapped[str] = mapped_column(String(255))
    short_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    avatar_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=_uuid)
    workflow_state: Mapped[str] = mapped_column(String(20), default="registered")
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    logins: Mapped[list[Login]] = relationship(back_populates="user", lazy="raise")

    @property
    def global_id(self) -> int:
        return global_id(self.id)


class Login(Base):
    """A pseudonym: the unique id (login name) and password a user signs in with."""

    __tablename__ = "logins"
    __table_args__ = (
        UniqueConstraint("account_id", "unique_id_normalized"),
        UniqueConstraint("account_id", "sis_user_id", name="uq_logins_account_id_sis_user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    unique_id: Mapped[str] = mapped_column(String(255))
    unique_id_normalized: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    sis_user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    user: Mapped[User] = relationship(back_populates="logins", lazy="raise")


class DeveloperKey(Base):
    """An OAuth client. Its ``client_id`` is its global id; its secret is checked by digest and
    kept sealed for admins to read."""

    __tablename__ = "developer_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True
    )
    secret_digest: Mapped[str] = mapped_column(String(64))
    # The same secret, sealed (``canvas.keys.service``): Canvas shows it to admins as ``api_key``.
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    redirect_uri: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    require_scopes: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    client_type: Mapped[str] = mapped_column(String(20), default="confidential")
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    binding_state: Mapped[str] = mapped_column(String(10), default="on")
    auto_expire_tokens: Mapped[bool] = mapped_column(Boolean, default=True)
    icon_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    vendor_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # "external": the key may issue RS256 client-credentials JWTs (spec 5.6).
    client_credentials_audience: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Its tokens are hidden from the person's Approved Integrations (spec 11.3).
    internal_service: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Canvas's ``DeveloperKey.default``: the key of tokens a person makes on their profile.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # LTI 1.3 (spec lti13.md 1.1): an LTI key holds the tool's configuration (Canvas's
    # ``Lti::ToolConfiguration`` settings: oidc_initiation_url, target_link_uri, scopes,
    # extensions with placements and privacy level, custom_fields) and the tool's public key,
    # inline or by URL, for client assertions and deep-linking responses.
    is_lti_key: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tool_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    public_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    public_jwk_url: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    @property
    def client_id(self) -> str:
        return str(global_id(self.id))

    @property
    def public_client(self) -> bool:
        return self.client_type == "public"

    @property
    def app_name(self) -> str:
        return self.name or self.email or "Third-Party Application"

    def summary(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "require_scopes": self.require_scopes,
            "trusted": self.trusted,
            "client_type": self.client_type,
            "workflow_state": self.workflow_state,
            "binding_state": self.binding_state,
            "created_at": self.created_at.isoformat(),
        }


class AuthorizationCode(Base):
    """A code from /login/oauth2/auth: 10 minutes, single use, bound to one key.

    A redeemed code's row stays until it expires, so that a second presentation can be
    recognised and the tokens issued from it revoked (RFC 6749 section 4.1.2).
    """

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    developer_key_id: Mapped[int] = mapped_column(ForeignKey("developer_keys.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str | None] = mapped_column(String(255), nullable=True)
    remember_access: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uri: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AccessToken(Base):
    """An OAuth access token and its refresh token, both kept only as digests.

    In the strict profile a refresh makes a new row (RFC 9700 section 4.14.2): the rows of one
    grant form a family, named by its first row's id (``family_id``, NULL on that first row),
    and a row whose refresh token was exchanged keeps ``refresh_used_at`` (and the state
    ``deleted``: its access token is gone) for as long as its family lives, so that a second
    presentation of that refresh token is recognised as reuse.
    """

    __tablename__ = "access_tokens"
    __table_args__ = (
        Index("ix_access_tokens_user_key", "user_id", "developer_key_id"),
        # Only a strict-profile rotation sets family_id, and every query of it compares it with
        # a value: a partial index, so that a code exchange or a manual token (NULL) does not
        # write a page of it (one of ~10 WAL pages a code exchange writes on SQLite).
        Index(
            "ix_access_tokens_family_id",
            "family_id",
            sqlite_where=text("family_id IS NOT NULL"),
            postgresql_where=text("family_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    developer_key_id: Mapped[int] = mapped_column(
        ForeignKey("developer_keys.id", ondelete="CASCADE"), index=True
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    token_hint: Mapped[str] = mapped_column(String(5))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str | None] = mapped_column(String(255), nullable=True)
    remember_access: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    permanent_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    authorization_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorization_codes.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    family_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refresh_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # An admin who made this token for its user (Canvas's ``real_user_id``).
    real_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class BrowserSession(Base):
    """A signed-in (or signing-in) browser. The cookie holds a random id; we keep its digest.

    ``data`` holds the pending OAuth request (Canvas's ``session[:oauth2]``) and CSRF tokens.
    """

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


__all__ = [
    "AccessToken",
    "Account",
    "AuthorizationCode",
    "BrowserSession",
    "DeveloperKey",
    "Login",
    "User",
]
