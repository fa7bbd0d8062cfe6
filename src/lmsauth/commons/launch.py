"""LTI 1.1 launches into Commons (``POST /api/lti``) and the terms of service.

A launch is a form that Canvas signed with OAuth 1.0a HMAC-SHA1 using the consumer's shared
secret (LTI 1.1 section 4; RFC 5849 section 3.4.2). oauthlib checks the signature; what it
cannot check against our clock and our database is done here:

- the timestamp window reads ``core.clock`` (oauthlib would read ``time.time()``, which tests
  cannot move), so its own window is switched off;
- a nonce is accepted at most once per consumer (RFC 5849 section 3.3): it is inserted under a
  unique constraint in the same transaction that records the launch, so two instances racing
  with one nonce cannot both succeed.

A verified launch creates or refreshes the Commons user (the "has launched before" record that
``POST /api/sessions`` requires) and starts a browser session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.commons import sessions
from lmsauth.commons.models import CommonsUser, LtiConsumer, LtiNonce
from lmsauth.commons.sealing import unseal
from lmsauth.commons.settings import CommonsSettings
from lmsauth.core import clock
from lmsauth.core.db import Database

MESSAGE_TYPE = "basic-lti-launch-request"
LTI_VERSION = "LTI-1p0"
OAUTH_REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
)
# Commons keys its users by Canvas user id and Canvas domain: Canvas sends those only when
# the external tool's privacy level is "public", which is how Commons is installed.
USER_REQUIRED = (
    "user_id",
    "custom_canvas_user_id",
    "custom_canvas_api_domain",
    "tool_consumer_instance_guid",
)
MAX_FIELDS = 200
REFUSED_SIGNATURE = (
    "The launch's consumer key or OAuth signature is not valid: check the consumer key and shared secret."
)
_DUMMY_SECRET = "dummy-secret-used-when-the-consumer-key-is-unknown"


class LaunchRefused(Exception):
    """A launch that was not accepted; ``message`` is shown to the person on the launch page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


class _SignatureValidator(RequestValidator):
    """What oauthlib asks of a server, answered for one consumer already read from the database.

    oauthlib's validator is synchronous and our database is async, so the consumer's secret is
    looked up first and handed in. Key and nonce formats are opened up: oauthlib's defaults
    (20 to 30 safe characters) reject the keys and UUID nonces real LTI consumers send.
    """

    def __init__(self, consumer_key: str, secret: str | None) -> None:
        super().__init__()
        self._consumer_key = consumer_key
        self._secret = secret

    @property
    def enforce_ssl(self) -> bool:
        return False  # a local Commons is plain HTTP; the signature covers the scheme anyway

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return ("HMAC-SHA1",)  # LTI 1.1 section 4.3

    @property
    def timestamp_lifetime(self) -> int:
        return 2**31  # checked against core.clock before oauthlib runs

    @property
    def dummy_client(self) -> str:
        return "dummy-client"

    def check_client_key(self, client_key: str) -> bool:
        return 0 < len(client_key) <= 255

    def check_nonce(self, nonce: str) -> bool:
        return 0 < len(nonce) <= 255

    def validate_client_key(self, client_key: str, request: OAuthRequest) -> bool:
        return self._secret is not None and client_key == self._consumer_key

    def get_client_secret(self, client_key: str, request: OAuthRequest) -> str:
        if self._secret is not None and client_key == self._consumer_key:
            return self._secret
        return _DUMMY_SECRET  # same work either way: no timing oracle for consumer keys

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: OAuthRequest,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        return True  # the nonce is claimed in the database once the signature is good


def parse_form(body: bytes) -> dict[str, str]:
    """The launch form; LTI 1.1 parameters are single-valued, so a repeated one is refused."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LaunchRefused(400, "The launch form cannot be read.") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise LaunchRefused(400, f"The launch parameter {key} was sent more than once.")
        form[key] = value
    return form


def signature_valid(url: str, body: bytes, content_type: str, consumer_key: str, secret: str | None) -> bool:
    endpoint = SignatureOnlyEndpoint(_SignatureValidator(consumer_key, secret))
    valid, _request = endpoint.validate_request(
        url, http_method="POST", body=body.decode("utf-8"), headers={"Content-Type": content_type}
    )
    return bool(valid)


def check_timestamp(raw: str, settings: CommonsSettings) -> datetime:
    """RFC 5849 section 3.3: a timestamp outside the window is refused, which bounds how long a
    nonce must be remembered."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise LaunchRefused(400, "The launch's oauth_timestamp is not a number of seconds.")
    stamp = datetime.fromtimestamp(int(raw), tz=UTC)
    now = clock.now()
    if stamp < now - settings.lti_timestamp_window or stamp > now + settings.clock_skew:
        raise LaunchRefused(
            401,
            "The launch has expired or its clock is wrong (oauth_timestamp is outside the "
            f"{settings.lti_timestamp_window_seconds}-second window). Launch Commons again from Canvas.",
        )
    return stamp


@dataclass
class AcceptedLaunch:
    user: CommonsUser
    session_id: str


async def accept_launch(
    db: Database,
    settings: CommonsSettings,
    secret_key: str,
    *,
    url: str,
    body: bytes,
    content_type: str,
) -> AcceptedLaunch:
    """Verify a launch, record it and start a session; raises ``LaunchRefused``."""
    form = parse_form(body)
    missing = [name for name in OAUTH_REQUIRED if not form.get(name)]
    if missing:
        raise LaunchRefused(400, f"This is not a signed LTI launch: {', '.join(missing)} missing.")
    stamp = check_timestamp(form["oauth_timestamp"], settings)
    consumer_key = form["oauth_consumer_key"]
    async with db.session() as session:
        consumer = await session.scalar(select(LtiConsumer).where(LtiConsumer.consumer_key == consumer_key))
    secret = unseal(secret_key, consumer.shared_secret_sealed) if consumer is not None else None
    valid = signature_valid(url, body, content_type, consumer_key, secret)
    if consumer is None or not valid:
        # One answer for both: which consumer keys exist is not the caller's to learn.
        raise LaunchRefused(401, REFUSED_SIGNATURE)
    if form.get("lti_message_type") != MESSAGE_TYPE or form.get("lti_version") != LTI_VERSION:
        raise LaunchRefused(400, f"Commons accepts only {MESSAGE_TYPE} messages of {LTI_VERSION}.")
    absent = [name for name in USER_REQUIRED if not form.get(name)]
    if absent:
        raise LaunchRefused(
            400,
            f"The launch lacks {', '.join(absent)}: set the Commons external tool's privacy level to public.",
        )
    try:
        async with db.session(write=True) as session:
            session.add(
                LtiNonce(
                    consumer_id=consumer.id,
                    nonce=form["oauth_nonce"],
                    expires_at=stamp + settings.lti_timestamp_window + settings.clock_skew,
                )
            )
            await session.flush()
            user = await record_launch(session, consumer, form)
            _row, token = await sessions.start(
                session, user=user, origin="lti", lifetime_seconds=settings.session_lifetime_seconds
            )
    except IntegrityError as exc:
        raise LaunchRefused(
            401, "This launch was already used (its nonce was seen before). Launch Commons again from Canvas."
        ) from exc
    return AcceptedLaunch(user, token)


def _roles(form: dict[str, str]) -> list[str]:
    return [role.strip() for role in form.get("roles", "").split(",") if role.strip()]


def _full_name(form: dict[str, str]) -> str:
    full = form.get("lis_person_name_full", "").strip()
    if full:
        return full
    given, family = form.get("lis_person_name_given", ""), form.get("lis_person_name_family", "")
    return " ".join(part for part in (given.strip(), family.strip()) if part)


async def record_launch(session: AsyncSession, consumer: LtiConsumer, form: dict[str, str]) -> CommonsUser:
    """Create or refresh the Commons user this launch is for, from the launch parameters
    (mapping of spec C6, INFERRED there: Commons' source is not public)."""
    now = clock.now()
    canvas_user_id = form["custom_canvas_user_id"]
    domain = form["custom_canvas_api_domain"].lower()
    user = await session.scalar(
        select(CommonsUser).where(
            CommonsUser.account_id == consumer.account_id,
            CommonsUser.canvas_api_domain == domain,
            CommonsUser.canvas_user_id == canvas_user_id,
        )
    )
    if user is None:
        user = CommonsUser(
            account_id=consumer.account_id,
            canvas_user_id=canvas_user_id,
            canvas_api_domain=domain,
            first_launch_at=now,
        )
        session.add(user)
    roles = _roles(form)
    extended = [role.strip() for role in form.get("ext_roles", "").split(",")]
    guid = form["tool_consumer_instance_guid"]
    user.lti_user_id = form["user_id"]
    user.tool_consumer_instance_guid = guid
    user.public_id = f"{form['user_id']}:{guid}"  # the <user>:<instance guid> form of spec C7
    user.full_name = _full_name(form)[:255]
    user.avatar_url = form.get("user_image") or None
    user.locale = (form.get("launch_presentation_locale") or "en")[:32]
    user.prefers_high_contrast = form.get("custom_prefers_high_contrast", "").lower() == "true"
    user.roles = roles
    user.is_admin = any(role.endswith("Administrator") for role in [*roles, *extended])
    user.last_launch_at = now
    await session.flush()
    return user


def accept_terms(user: CommonsUser) -> None:
    if user.terms_accepted_at is None:
        user.terms_accepted_at = clock.now()


__all__ = ["AcceptedLaunch", "LaunchRefused", "accept_launch", "accept_terms"]
