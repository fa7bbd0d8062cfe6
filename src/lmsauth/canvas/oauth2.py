"""Canvas's OAuth2 provider: /login/oauth2/auth, confirm, accept, deny, and the token endpoint.

Follows ``Oauth2ProviderController`` and ``Canvas::OAuth::Provider`` (spec sections 3 to 6).
Where the seed text or safety asks for more than Canvas does, the docstring of the rule says so.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from lmsauth.canvas import exchange, sessions, tokens
from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.bearer import authenticate
from lmsauth.canvas.client_auth import (
    ClientCredentials,
    ClientGate,
    authenticate_client,
    check_client,
    client_credentials,
)
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import (
    invalid_access_token,
    oauth_error,
    unknown_client,
)
from lmsauth.canvas.keys import client_credentials as client_credentials_grant
from lmsauth.canvas.lti import client_assertion
from lmsauth.canvas.models import AccessToken, Account, BrowserSession, DeveloperKey, User
from lmsauth.canvas.people import usable_user
from lmsauth.canvas.redirects import OUT_OF_BAND, final_redirect, redirect_uri_allowed
from lmsauth.core import clock, metrics, secrets
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.web import ORJSONResponse, Params, client_ip, read_params

AUTH_PATH = "/login/oauth2/auth"
# The consent page's CSRF token, a member of the pending request it was rendered for.
CONSENT_CSRF = "custom_csrf_token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# What a pending request may keep of each field (issue 15, finding 3). Canvas's own columns:
# ``purpose`` is a string(255); ``state`` a bounded value a client echoes.
MAX_STATE = 1024
MAX_PURPOSE = 255
MAX_NONCE = 255
MAX_SCOPE = 2048
# RFC 7636 section 4.2: ``code_challenge = 43*128unreserved`` (BASE64URL of a SHA-256 for S256).
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
TOO_MANY_REQUESTS = "Too many requests from your address. Please wait a moment and try again."


def oversized_field(
    state: str | None, purpose: str | None, nonce: str | None, scope: str | None, challenge: str | None
) -> str | None:
    """Why an authorization request's fields are too large to keep, or None.

    The pending request is kept until sign-in and consent (in the login cookie, then the
    session's row), so each field it keeps has a bound; a ``code_challenge`` must have RFC 7636's
    form (section 4.2) under any method, since no verifier could ever match another.
    """
    for name, value, limit in (
        ("state", state, MAX_STATE),
        ("purpose", purpose, MAX_PURPOSE),
        ("nonce", nonce, MAX_NONCE),
        ("scope", scope, MAX_SCOPE),
    ):
        if value is not None and len(value) > limit:
            return f"{name} must be at most {limit} characters"
    if challenge is not None and challenge != "" and not CODE_CHALLENGE.fullmatch(challenge):
        return "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'"
    return None


def _truthy(value: str | None) -> bool:
    """Rails' notion of a present flag: any value but blank, ``0`` or ``false``."""
    return value is not None and value.strip().lower() not in ("", "0", "false", "f", "off", "no")


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


# POST /login/oauth2/token: each has its method below (``OAuth2Provider._token`` dispatches).
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


class OAuth2Provider:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ /login/oauth2/auth

    async def authorize(self, request: Request) -> Response:
        """GET /login/oauth2/auth, in the order of spec 3.2, after a limit per client address."""
        limited = await self.ctx.limits.authorize.hit(client_ip(request))
        if not limited.allowed:
            page = self.ctx.render(
                request, "message.html", 429, title="Too many requests", message=TOO_MANY_REQUESTS
            )
            page.headers["Retry-After"] = str(limited.retry_after)
            return page
        try:
            params = await read_params(request, body=False)
            if "code" in params or "error" in params:
                return self._landing_page(request, params)
            raw_scope = params.get("scope") if "scope" in params else params.get("scopes")
            client_id = params.get("client_id")
            redirect_uri = params.get("redirect_uri")
            state = params.get("state")
            purpose = params.get("purpose")
            response_type = params.get("response_type")
            prompt = params.get("prompt")
            force_login = _truthy(params.get("force_login"))
            unique_id = params.get("unique_id")
            code_challenge = params.get("code_challenge")
            challenge_method = params.get("code_challenge_method")
            nonce = params.get("nonce")
        except BadParameters as exc:
            return oauth_error("invalid_request", exc.message).response()
        requested_scopes = scope_rules.parse(raw_scope)

        async with self.ctx.db.session(write=True) as session:
            key = await tokens.find_active_key(session, client_id)
            if key is None:
                return unknown_client().response()
            if not redirect_uri_allowed(
                redirect_uri, list(key.redirect_uris), key.redirect_uri, strict=self.ctx.strict
            ):
                return oauth_error(
                    "invalid_request", "redirect_uri does not match client settings"
                ).response()
            assert redirect_uri is not None
            pending: dict[str, Any] = {
                "client_id": key.id,
                "redirect_uri": redirect_uri,
                "scopes": requested_scopes,
                "purpose": purpose,
            }
            if state is not None:
                pending["state"] = state
            if nonce is not None:
                pending["nonce"] = nonce
            # Spec 3.7: only S256 is stored; plain or a missing method is ignored, as in Canvas.
            if code_challenge and challenge_method == "S256":
                pending["code_challenge"] = code_challenge

            def error(code: str, description: str) -> Response:
                return self._to_client(pending, {"error": code, "error_description": description})

            oversized = oversized_field(state, purpose, nonce, raw_scope, code_challenge)
            if oversized is None and not sessions.pending_fits(pending):
                oversized = "the authorization request is too large"
            if oversized is not None:
                return error("invalid_request", oversized)

            if key.require_scopes:
                missing = scope_rules.not_granted(requested_scopes, list(key.scopes))
                if missing is not None:
                    return error("invalid_scope", scope_rules.invalid_scope_description(missing))
            if not tokens.key_usable(key, await tokens.root_account_id(session)):
                return error(
                    "unauthorized_client",
                    "Client does not have access to the specified Canvas account.",
                )
            if response_type != "code":
                return error("unsupported_response_type", "Only response_type=code is permitted")
            if self.ctx.strict and "code_challenge" not in pending:
                # RFC 9700 section 2.1.1: the strict profile requires PKCE (S256) of every client.
                return error("invalid_request", "code_challenge with code_challenge_method=S256 is required")

            current = await sessions.load(session, request)
            user = await self._user(session, current)
            if prompt is not None:
                if prompt == "login":
                    force_login = True
                elif prompt == "none":
                    if user is None:
                        return error("login_required", "prompt=none but there is no current session")
                    if not await self._auto_approvable(session, key, user, pending):
                        return error(
                            "interaction_required",
                            "prompt=none but a token cannot be granted without user interaction",
                        )
                    return await self._issue_code_redirect(session, key, user, pending)
                else:
                    return error("unsupported_prompt_type", 'prompt must be "none" (or omitted)')

            # Only a request that goes on to log in or consent keeps state (Canvas's session[:oauth2]):
            # a signed-in session's in its row, the rest in the sealed login cookie until sign-in.
            if user is not None and current is not None and not force_login:
                sessions.update_data(current, oauth2=pending)
                return await self.confirmation_redirect(session, current, key, user)
            if current is not None:
                # This request replaces any pending one, and the consent token with it: a
                # page already shown must not answer a request that came after it.
                sessions.update_data(current, oauth2=None)
        secret_key = self.ctx.settings.resolved_secret_key
        login_state = sessions.read_login_state(request, secret_key) or sessions.LoginState.new()
        query: dict[str, str] = {}
        if force_login:
            query["force_login"] = "1"
        if unique_id:
            query["pseudonym_session[unique_id]"] = unique_id
        response = _redirect("/login/canvas" + ("?" + urlencode(query) if query else ""))
        sessions.set_login_cookie(
            response,
            sessions.seal_login_state(login_state.with_pending(pending), secret_key),
            secure=self.ctx.settings.secure_cookies,
        )
        return response

    def _landing_page(self, request: Request, params: Params) -> Response:
        """Spec 3.6: the out-of-band landing page; the code is shown for the user to copy."""
        try:
            code, error = params.get("code"), params.get("error")
        except BadParameters:
            code, error = None, "invalid_request"
        return self.ctx.render(request, "oob.html", code=code, error=error)

    async def _user(self, session: AsyncSession, row: BrowserSession | None) -> User | None:
        return await usable_user(session, row.user_id) if row is not None else None

    async def _auto_approvable(
        self, session: AsyncSession, key: DeveloperKey, user: User, pending: dict[str, Any]
    ) -> bool:
        """Spec 4.1 ``authorized_token?``: never for out-of-band; trusted keys, or a remembered
        userinfo grant."""
        if pending["redirect_uri"] == OUT_OF_BAND:
            return False
        if key.trusted:
            return True
        if scope_rules.is_userinfo(pending["scopes"]):
            remembered = await exchange.remembered_userinfo(
                self.ctx.db, key_id=key.id, key_name=key.name, user_id=user.id, purpose=pending.get("purpose")
            )
            return remembered is not None
        return False

    async def confirmation_redirect(
        self, session: AsyncSession, row: BrowserSession, key: DeveloperKey, user: User
    ) -> Response:
        """Spec 3.2 step 10 (also run after a successful login): a code, or the consent page."""
        pending = row.data["oauth2"]
        if await self._auto_approvable(session, key, user, pending):
            sessions.update_data(row, oauth2=None)
            return await self._issue_code_redirect(session, key, user, pending)
        return _redirect("/login/oauth2/confirm")

    async def _issue_code_redirect(
        self,
        session: AsyncSession,
        key: DeveloperKey,
        user: User,
        pending: dict[str, Any],
        remember_access: bool = False,
    ) -> Response:
        code = await tokens.issue_code(
            session, key=key, user_id=user.id, pending=pending, remember_access=remember_access
        )
        metrics.token_issued("canvas_code")
        return self._to_client(pending, {"code": code})

    def _to_client(self, pending: dict[str, Any], params: dict[str, str | None]) -> Response:
        """``Provider.final_redirect``: sorted parameters, ``state`` whenever one was sent."""
        if "state" in pending:
            params = {**params, "state": pending["state"]}
        if params.get("error"):
            metrics.failure("canvas", str(params["error"]))
        return _redirect(final_redirect(pending["redirect_uri"], params, AUTH_PATH))

    # ------------------------------------------------------------------ consent

    async def _pending(
        self, session: AsyncSession, request: Request
    ) -> tuple[BrowserSession, dict[str, Any], DeveloperKey, User] | None:
        row = await sessions.load(session, request)
        if row is None or not isinstance(row.data.get("oauth2"), dict):
            return None
        user = await self._user(session, row)
        key = await session.get(DeveloperKey, row.data["oauth2"]["client_id"])
        if user is None or key is None or key.workflow_state != "active":
            return None
        return row, row.data["oauth2"], key, user

    async def confirm(self, request: Request) -> Response:
        """GET /login/oauth2/confirm: the consent page (spec 4.2)."""
        async with self.ctx.db.session(write=True) as session:
            found = await self._pending(session, request)
            if found is None:
                return _redirect("/login/canvas")
            row, pending, key, user = found
            # Canvas (8ff2638): a fresh ``SecureRandom.hex(24)`` for every consent page, kept
            # inside the pending request it answers (``_consent_answer`` says why).
            csrf = secrets.hex_token(24)
            sessions.update_data(row, oauth2={**pending, CONSENT_CSRF: csrf})
            return self.ctx.render(
                request,
                "confirm.html",
                app_name=key.app_name,
                icon_url=key.icon_url,
                user_name=user.short_name,
                email=user.email if user.email and user.email != user.short_name else None,
                scopes=pending["scopes"],
                userinfo=pending["scopes"] == [scope_rules.USERINFO],
                csrf=csrf,
            )

    async def _consent_answer(self, request: Request, *, accept: bool) -> Response:
        """Accept or deny what the consent page showed, and only that.

        The page's token lives inside the pending request (``oauth2``), as Canvas keeps it
        in ``session[:oauth2]``: a later ``/login/oauth2/auth`` (another client, redirect URI,
        scope or state, e.g. with ``force_login=1``) replaces the whole request and drops the
        token with it, so a click on a page already shown can never authorize what another
        request put in its place. Only a consent page rendered for the new request answers it.
        """
        async with self.ctx.db.session(write=True) as session:
            found = await self._pending(session, request)
            if found is None:
                return PlainTextResponse("Invalid or missing session for oauth", status_code=400)
            row, pending, key, user = found
            expected = pending.get(CONSENT_CSRF)
            if not isinstance(expected, str):
                return PlainTextResponse("Missing custom CSRF token", status_code=400)
            try:
                form = await read_params(request, query=False)
                presented = form.get("custom_csrf_token")
                remember = _truthy(form.get("remember_access"))
            except BadParameters:
                return PlainTextResponse("Invalid custom CSRF token", status_code=400)
            if presented is None or not secrets.same(presented, expected):
                return PlainTextResponse("Invalid custom CSRF token", status_code=400)
            sessions.update_data(row, oauth2=None)
            if not accept:
                return self._to_client(pending, {"error": "access_denied"})
            return await self._issue_code_redirect(session, key, user, pending, remember_access=remember)

    async def accept(self, request: Request) -> Response:
        """POST /login/oauth2/accept (spec 4.3)."""
        return await self._consent_answer(request, accept=True)

    async def deny(self, request: Request) -> Response:
        """/login/oauth2/deny (spec 4.4), POST only: the ``oauth2_deny_post`` behaviour, so
        that a cross-site link cannot answer the consent page for the user."""
        if request.method != "POST":
            return PlainTextResponse("This endpoint requires a POST request", status_code=405)
        return await self._consent_answer(request, accept=False)

    # ------------------------------------------------------------------ POST /login/oauth2/token

    async def token(self, request: Request) -> Response:
        try:
            return await self._token(request)
        except WireError as exc:
            return exc.response()

    async def _token(self, request: Request) -> Response:
        try:
            params = await read_params(request)
            grant_type = params.get("grant_type")
            if grant_type is None and "code" in params:
                grant_type = "authorization_code"
            credentials = client_credentials(request, params)
            by_assertion = client_assertion.is_assertion_request(grant_type, params)
        except BadParameters as exc:
            raise oauth_error("invalid_request", exc.message) from exc
        if grant_type not in GRANT_TYPES:
            raise oauth_error(
                "unsupported_grant_type", "The grant_type you requested is not currently supported"
            )
        if by_assertion:
            # Spec 5.6, the asymmetric variant first: the key is named by the assertion alone.
            issued = await client_assertion.grant(self.ctx, request, params)
            metrics.token_issued("canvas_token_client_credentials")
            return ORJSONResponse(issued, headers=NO_STORE)
        gate = ClientGate(self.ctx.limits, request, credentials)
        gate.check_address()
        if grant_type == "client_credentials":
            return await self._client_credentials(params, credentials, gate)
        if grant_type == "refresh_token" and self.ctx.strict:
            return await self._strict_refresh(params, credentials, gate)
        # A code exchange, or a refresh in the canvas profile: on the driver.
        return await self._exchange(grant_type, params, credentials, gate)

    async def _client_credentials(
        self, params: Params, credentials: ClientCredentials, gate: ClientGate
    ) -> Response:
        """Spec 5.6: a service token for a key's own account (``canvas.keys.client_credentials``)."""
        async with self.ctx.db.session(write=True) as session:
            key, _ = await authenticate_client(
                session, credentials, gate, public_allowed=False, strict=self.ctx.strict
            )
            owner = await session.get(Account, key.account_id) if key.account_id is not None else None
            issued = await client_credentials_grant.grant(
                self.ctx.keyring, self.ctx.settings.public_url, key, owner, params
            )
        metrics.token_issued("canvas_token_client_credentials")
        return ORJSONResponse(issued, headers=NO_STORE)

    async def _strict_refresh(
        self, params: Params, credentials: ClientCredentials, gate: ClientGate
    ) -> Response:
        """The strict profile's refresh (``_rotate``): one ORM transaction, so that the rotation
        and its reuse detection commit, or roll back, together."""
        async with self.ctx.db.session(write=True) as session:
            key, secret_exempt = await authenticate_client(
                session, credentials, gate, public_allowed=True, strict=self.ctx.strict
            )
            try:
                result = await self._rotate(session, key, _refresh_param(params))
            except WireError as exc:
                # A public client proves itself by its grant alone: a bad one is a failed
                # authentication, not a request of the client's.
                if secret_exempt:
                    raise await gate.failed(exc) from None
                raise
            if secret_exempt and not isinstance(result, WireError):
                await gate.spend(key)  # a refusal rolls the grant back with the transaction
        return await self._answer("refresh_token", result, gate, secret_exempt)

    async def _answer(
        self, grant_type: str, result: dict[str, Any] | WireError, gate: ClientGate, secret_exempt: bool
    ) -> Response:
        """The grant's answer, given only now that what it wrote has committed (a token, or
        the revocation that follows a reused code or refresh token)."""
        if isinstance(result, WireError):
            raise (await gate.failed(result)) if secret_exempt else result
        metrics.token_issued(f"canvas_token_{grant_type}")
        return ORJSONResponse(result, headers=NO_STORE)

    async def _exchange(
        self, grant_type: str, params: Params, credentials: ClientCredentials, gate: ClientGate
    ) -> Response:
        """A code exchange, or a refresh in the canvas profile: one read of the client's key
        with the code or token presented, the checks, then one write (``canvas.exchange``).

        A public client without its secret proves itself by the grant: it spends its budget
        once the grant has passed every check, just before the write, so that a refusal (429)
        leaves the code or token as it was."""
        db = self.ctx.db
        key_id = tokens.key_row_id(credentials.client_id)
        if grant_type == "authorization_code":
            code = await exchange.find_code(db, key_id, _lenient(params, "code"))
            key, exempt = await self._client(
                code, credentials, gate, public_allowed="code_verifier" in params
            )
            grant = self._redeem_code(key, code, params, _proof(gate, key, exempt))
        else:
            token = await exchange.find_refresh(db, key_id, _lenient(params, "refresh_token"))
            key, exempt = await self._client(token, credentials, gate, public_allowed=True)
            grant = self._refresh(key, token, params, _proof(gate, key, exempt))
        try:
            result = await grant
        except WireError as exc:
            # A public client proves itself by its grant alone: a bad one is a failed
            # authentication, not a request of the client's.
            if exempt:
                raise await gate.failed(exc) from None
            raise
        return await self._answer(grant_type, result, gate, exempt)

    async def _client(
        self,
        found: exchange.Found[Any],
        credentials: ClientCredentials,
        gate: ClientGate,
        *,
        public_allowed: bool,
    ) -> tuple[exchange.ClientKey, bool]:
        """``check_client`` of the key read with the grant: the key, and whether it went
        without its secret."""
        key = found.key if found.key is not None and found.key.active_client else None
        exempt = await check_client(
            key, credentials, gate, public_allowed=public_allowed, strict=self.ctx.strict
        )
        assert key is not None  # check_client refused it otherwise
        return key, exempt

    def _refresh_not_found(self) -> WireError:
        """Canvas answers every refused refresh token with ``invalid_request``; the strict
        profile with RFC 6749 section 5.2's ``invalid_grant``, the same for unknown, expired,
        revoked and reused tokens."""
        return oauth_error(
            "invalid_grant" if self.ctx.strict else "invalid_request", "refresh_token not found"
        )

    async def _redeem_code(
        self,
        key: exchange.ClientKey,
        found: exchange.Found[exchange.Code],
        params: Params,
        prove: Callable[[], Awaitable[None]],
    ) -> dict[str, Any] | WireError:
        """Spec 5.3 and 5.4, plus two rules the seed text and safety ask for:
        the ``redirect_uri`` sent to /auth must be sent again, and a code presented twice
        revokes every token issued from it (RFC 6749 section 4.1.2)."""
        db = self.ctx.db
        try:
            code = params.get("code")
            redirect_uri = params.get("redirect_uri")
            verifier = params.get("code_verifier")
            replace = _truthy(params.get("replace_tokens"))
        except BadParameters as exc:
            raise oauth_error("invalid_request", exc.message) from exc
        if not code:
            raise oauth_error(
                "invalid_request",
                "You must provide the code parameter when using the authorization_code grant type",
            )
        row = found.grant  # None: unknown, or past its 10 minutes
        if row is None:
            raise oauth_error("invalid_grant", "authorization_code not found")
        if row.developer_key_id != key.id:
            # Ownership before reuse: another client replaying a leaked, used code must not
            # revoke this client's tokens. A used code is "not found" to everyone; a live one
            # is Canvas's "incorrect client" (spec 5.3 step 4), and stays unconsumed.
            if row.redeemed_at is not None:
                raise oauth_error("invalid_grant", "authorization_code not found")
            raise oauth_error("invalid_grant", "incorrect client")
        if row.redeemed_at is not None:
            await exchange.revoke_tokens_from_code(db, row.id)
            return oauth_error("invalid_grant", "authorization_code not found")
        if row.redirect_uri is not None and redirect_uri != row.redirect_uri:
            raise oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
        if "code_verifier" in params.names() or row.code_challenge is not None:
            # A code bound to a challenge needs its verifier, whoever presents it: no downgrade.
            if row.code_challenge is None or not verifier:
                raise oauth_error("invalid_grant", "invalid code_verifier")
            if not tokens.pkce_matches(row.code_challenge, verifier):
                raise oauth_error("invalid_grant", "invalid code_verifier")
        user = found.user
        if user is None:
            raise oauth_error("invalid_grant", "authorization_code not found")
        remembered = None
        if scope_rules.is_userinfo(list(row.scopes)) and not replace:
            # Spec 5.3 step 5, ``find_reusable_access_token``: a remembered userinfo grant is
            # answered with the token it already has, not a new row per sign-in.
            remembered = await exchange.remembered_userinfo(
                db, key_id=key.id, key_name=key.name, user_id=user.id, purpose=row.purpose
            )
        await prove()
        if remembered is not None:
            issued: exchange.NewToken | None = remembered if await exchange.claim_code(db, row) else None
        else:
            issued = await exchange.issue_from_code(db, key, row, user.id, replace_tokens=replace)
        if issued is None:  # redeemed meanwhile by another request
            await exchange.revoke_tokens_from_code(db, row.id)
            return oauth_error("invalid_grant", "authorization_code not found")
        return _token_body(issued, user, key)

    async def _refresh(
        self,
        key: exchange.ClientKey,
        found: exchange.Found[exchange.RefreshRow],
        params: Params,
        prove: Callable[[], Awaitable[None]],
    ) -> dict[str, Any] | WireError:
        """Spec 5.5: same row, new access string; confidential clients keep their refresh token.
        The strict profile rotates every refresh token instead (``_rotate``)."""
        presented = _refresh_param(params)
        row, user = found.grant, found.user  # row None: unknown, revoked or past its hard expiry
        if row is None or user is None:
            raise self._refresh_not_found()
        if row.developer_key_id != key.id:
            raise oauth_error("invalid_grant", "incorrect client")
        if not tokens.key_usable(key, found.root_account):
            raise self._refresh_not_found()
        assert presented  # the row was found by it
        await prove()
        issued = await exchange.refresh_access(db=self.ctx.db, key=key, token=row)
        if issued is None:  # revoked or refreshed meanwhile
            raise self._refresh_not_found()
        return _token_body(issued, user, key)

    async def _rotate(
        self, session: AsyncSession, key: DeveloperKey, presented: str
    ) -> dict[str, Any] | WireError:
        """The strict profile's refresh: rotation with reuse detection (RFC 9700 section 4.14.2).

        Every refresh answers a new access token and a new refresh token, as a new row of the
        grant's family, and the presented refresh token (with its access token) is used up.
        Presenting a used refresh token again revokes every token of the family: one of the
        two presenters holds a stolen copy, and the server cannot tell which.

        Grace period (``LMSAUTH_REFRESH_REUSE_GRACE_SECONDS``, 10 s): within it, the most
        recently used refresh token may be presented again and answers another fresh rotation
        of the same family, while what the first presentation issued stays valid. This is what
        Auth0 ("reuse interval": a new rotating refresh token is issued, and only the previous
        token can be reused), Okta ("grace period for token rotation"), Ory Hydra ("graceful
        refresh token rotation": each use in the period gets new tokens, all linked to one
        chain) and Amazon Cognito (``RetryGracePeriodSeconds``) do. The other choices fail
        the clients the period is for: refusing without revoking strands a client whose
        answer was lost on the way, and voiding the first answer breaks a client racing
        itself, which may keep either answer. The period never extends (it counts from the
        first use), a token older than the family's latest rotation gets none (as in
        Auth0), nor does a family already revoked.

        Refusals are "refresh_token not found" (``invalid_grant`` in this profile), as for an
        unknown token, so a reuse cannot be told from a typo. The decision runs under a per-family
        lock, and the exchange itself is a compare-and-set (``tokens.claim_refresh``), so two
        concurrent presentations can never both rotate one token; everything is committed
        before the answer leaves (the revocation too: this returns the error, not raises it).
        """
        not_found = self._refresh_not_found()
        row = await tokens.find_refresh_row(session, presented)
        if row is None:
            raise not_found
        await tokens.lock_family(session, row)
        user = await usable_user(session, row.user_id)
        if user is None:
            raise not_found
        if row.refresh_used_at is None and not tokens.refreshable(row):  # revoked or expired
            raise not_found
        if row.developer_key_id != key.id:
            raise oauth_error("invalid_grant", "incorrect client")
        if not tokens.key_usable(key, await tokens.root_account_id(session)):
            raise not_found
        if row.refresh_used_at is None and await tokens.claim_refresh(session, row):
            issued = await tokens.rotate_refresh_token(session, row, key)
            return tokens.token_response(issued, user, key)
        await session.refresh(row)
        used_at = row.refresh_used_at
        if used_at is None:  # revoked meanwhile
            raise not_found
        family = tokens.family_of(row)
        grace = timedelta(seconds=self.ctx.settings.refresh_reuse_grace_seconds)
        if (
            clock.now() - used_at < grace
            and not await tokens.rotated_since(session, family, used_at)
            and await tokens.family_is_live(session, family)
        ):
            issued = await tokens.rotate_refresh_token(session, row, key)
            return tokens.token_response(issued, user, key)
        await tokens.revoke_family(session, family)
        return not_found

    # ------------------------------------------------------------------ DELETE /login/oauth2/token

    async def revoke(self, request: Request) -> Response:
        """Spec 6. Two choices of ours: a token past its 1-hour soft expiry may still revoke
        itself (it could still be refreshed, so refusing would leave it alive), and
        ``expire_sessions`` ends every browser session of the token's user, not only the
        caller's cookie session. In the strict profile the whole family of the token goes
        (RFC 7009 section 2.1: the grant's other tokens may be revoked with it)."""
        try:
            params = await read_params(request)
            expire_sessions = _truthy(params.get("expire_sessions"))
            presented = bearer_token(request, params)
        except BadParameters as exc:
            return JSONResponse({"message": exc.message}, status_code=400)
        clear_cookie = False
        async with self.ctx.db.session(write=True) as session:
            if expire_sessions:
                current = await sessions.load(session, request)
                if current is not None:
                    await sessions.end(session, current)
                    clear_cookie = True
            if not presented:
                response: Response = JSONResponse(
                    {"message": "can't delete OAuth access token when not using an OAuth access token"},
                    status_code=400,
                )
            else:
                bearer = await authenticate(self.ctx.db, presented, allow_soft_expired=True)
                row = await session.get(AccessToken, bearer.token.id) if bearer is not None else None
                if bearer is None or row is None:
                    response = invalid_access_token(strict=self.ctx.strict).response()
                else:
                    await tokens.revoke_grant(session, row, whole_family=self.ctx.strict)
                    if expire_sessions:
                        await sessions.end_all_for_user(session, bearer.user.id)
                    response = JSONResponse({})
        if clear_cookie:
            sessions.clear_cookie(response, secure=self.ctx.settings.secure_cookies)
        return response


def _lenient(params: Params, name: str) -> str | None:
    """A parameter to look up before the client is authenticated: None when repeated (the
    grant's own reading of it reports that, after the client check, as before)."""
    try:
        return params.get(name)
    except BadParameters:
        return None


def _refresh_param(params: Params) -> str:
    try:
        presented = params.get("refresh_token")
    except BadParameters as exc:
        raise oauth_error("invalid_request", exc.message) from exc
    if not presented:
        raise oauth_error(
            "invalid_request",
            "You must provide the refresh_token parameter when using the refresh_token grant type",
        )
    return presented


def _proof(gate: ClientGate, key: exchange.ClientKey, exempt: bool) -> Callable[[], Awaitable[None]]:
    """What a grant awaits once it has passed every check, before it writes: a public client
    without its secret spends one of its budget there (a refusal leaves the grant unused)."""

    async def prove() -> None:
        if exempt:
            await gate.spend(key)

    return prove


def _token_body(
    issued: exchange.NewToken, user: exchange.TokenUser, key: exchange.ClientKey
) -> dict[str, Any]:
    return tokens.token_body(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        scopes=issued.scopes,
        expires_at=issued.expires_at,
        user=user,
        auto_expire_tokens=key.auto_expire_tokens,
    )


def bearer_token(request: Request, params: Params | None) -> str | None:
    """Spec 7.1: ``Authorization: Bearer <token>`` (case-sensitive), else ``access_token``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, rest = header.partition(" ")
        if scheme == "Bearer" and rest.strip():
            return rest.strip()
    if params is not None:
        value = params.get("access_token")
        if value and value.strip():
            return value.strip()
    return None
