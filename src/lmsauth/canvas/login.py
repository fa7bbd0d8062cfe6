"""Canvas's login pages: /login, /login/canvas, /logout and the signed-in home page.

Signing in checks the password with argon2id (an unknown login costs the same time), needs
the form's CSRF token, and always issues a new session id; a pending OAuth request survives
it, as ``Login::Shared`` keeps ``session[:oauth2]``. Until then the form's state lives in the
sealed ``canvas_login`` cookie, not the database (``sessions``). Attempts are throttled per login name and
per client address (``core.ratelimit.LoginThrottle``): a growing delay, then a lock.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import sessions, signed_in
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.models import BrowserSession, DeveloperKey, Login
from lmsauth.canvas.oauth2 import OAuth2Provider
from lmsauth.canvas.people import usable_user
from lmsauth.core import clock, metrics, secrets
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import client_ip, read_params

LOGIN_FAILED = "Please verify your username or password and try again."
# While a login name or an address is locked: the same page for every login name, known or not.
TOO_MANY_ATTEMPTS = (
    "Too many failed login attempts. Please try again later or contact your system administrator."
)


class LoginPages:
    def __init__(self, ctx: CanvasContext, provider: OAuth2Provider) -> None:
        self.ctx = ctx
        self.provider = provider

    async def login_redirect(self, request: Request) -> Response:
        """GET /login: Canvas sends people on to its own login form, keeping the query."""
        query = request.url.query
        return RedirectResponse("/login/canvas" + (f"?{query}" if query else ""), status_code=302)

    async def login_form(self, request: Request) -> Response:
        try:
            params = await read_params(request, body=False)
            unique_id = params.get("pseudonym_session[unique_id]") or ""
            force_login = params.get("force_login") is not None
        except BadParameters:
            unique_id, force_login = "", False
        if sessions.COOKIE in request.cookies:  # perhaps signed in: the database says
            async with self.ctx.db.session(write=True) as session:
                row = await sessions.load(session, request)
                if row is not None and row.user_id is not None and not force_login:
                    return await self._signed_in_elsewhere(session, row)
        # Not signed in (or signing in again): nothing is written, the state goes in a cookie.
        secret_key = self.ctx.settings.resolved_secret_key
        state = sessions.read_login_state(request, secret_key)
        cookie = None
        if state is None:  # else its token stays: a form open in another tab still works
            state = sessions.LoginState.new()
            cookie = sessions.seal_login_state(state, secret_key)
        response = self.ctx.render(
            request, "login.html", csrf=state.csrf, unique_id=unique_id, force_login=force_login
        )
        if cookie is not None:
            sessions.set_login_cookie(response, cookie, secure=self.ctx.settings.secure_cookies)
        return response

    async def _signed_in_elsewhere(self, session: AsyncSession, row: BrowserSession) -> Response:
        """A signed-in person on the login form: on to the pending request, else home."""
        pending = row.data.get("oauth2")
        if isinstance(pending, dict) and row.user_id is not None:
            user = await usable_user(session, row.user_id)
            key = await session.get(DeveloperKey, pending["client_id"])
            if user is not None and key is not None and key.workflow_state == "active":
                return await self.provider.confirmation_redirect(session, row, key, user)
        return RedirectResponse("/", status_code=302)

    async def login_submit(self, request: Request) -> Response:
        try:
            form = await read_params(request, query=False)
            unique_id = (form.get("pseudonym_session[unique_id]") or "").strip()
            password = form.get("pseudonym_session[password]") or ""
            presented_csrf = form.get("authenticity_token")
            force_login = form.get("force_login") is not None
        except BadParameters as exc:
            return self.ctx.render(request, "message.html", 400, title="Bad request", message=exc.message)
        throttle, address = self.ctx.limits.login, client_ip(request)
        verdict = await throttle.attempt(address, unique_id)
        if verdict.locked_for:
            locked = self.ctx.render(
                request, "message.html", 429, title="Log In to Canvas", message=TOO_MANY_ATTEMPTS
            )
            locked.headers["Retry-After"] = str(verdict.locked_for)
            return locked
        if verdict.delay:
            await asyncio.sleep(verdict.delay)  # before any database connection is taken
        state = sessions.read_login_state(request, self.ctx.settings.resolved_secret_key)
        if state is None or not sessions.csrf_ok(state, presented_csrf):
            await throttle.not_attempted(address, unique_id)
            return self.ctx.render(
                request,
                "message.html",
                422,
                title="Invalid form",
                message="The form expired or was not sent from this site. Go back, reload and try again.",
            )
        async with self.ctx.db.session() as session:
            login = await self._active_login(session, unique_id)
        # No database connection is held while the hash is checked (tens of ms of a core,
        # queued behind other logins): the rows are read again, to be written, only after it.
        checked_hash = login.password_hash if login is not None else None
        if await secrets.verify_password_in_worker(checked_hash, password):
            async with self.ctx.db.session(write=True) as session:
                signed_in = await self._sign_in(session, request, unique_id, checked_hash, state.oauth2)
            if signed_in is not None:
                await throttle.succeeded(address, unique_id)
                response, token = signed_in
                secure = self.ctx.settings.secure_cookies
                sessions.set_cookie(response, token, secure=secure)
                sessions.clear_login_cookie(response, secure=secure)
                return response
        metrics.failure("canvas", "login_failed")
        return self.ctx.render(
            request,
            "login.html",
            400,
            csrf=state.csrf,
            unique_id=unique_id,
            force_login=force_login,
            error=LOGIN_FAILED,
        )

    @staticmethod
    async def _active_login(session: AsyncSession, unique_id: str) -> Login | None:
        return await session.scalar(
            select(Login).where(
                Login.unique_id_normalized == unique_id.lower(),
                Login.workflow_state == "active",
            )
        )

    async def _sign_in(
        self,
        session: AsyncSession,
        request: Request,
        unique_id: str,
        checked_hash: str | None,
        pending: dict[str, Any] | None,
    ) -> tuple[Response, str] | None:
        """The password matched ``checked_hash``: sign its user in, unless the login, its
        password or its user changed meanwhile. The response and the new session's cookie value."""
        login = await self._active_login(session, unique_id)
        if login is None or login.password_hash != checked_hash:
            return None
        user = await usable_user(session, login.user_id)
        if user is None:
            return None
        login.last_login_at = clock.now()
        fresh = await sessions.sign_in(session, await sessions.load(session, request), user.id, pending)
        assert fresh.token is not None
        pending = fresh.row.data.get("oauth2")
        key = await session.get(DeveloperKey, pending["client_id"]) if pending is not None else None
        if key is not None and key.workflow_state == "active":
            response = await self.provider.confirmation_redirect(session, fresh.row, key, user)
        else:
            response = RedirectResponse("/", status_code=302)
        return response, fresh.token

    async def home(self, request: Request) -> Response:
        """The dashboard of a signed-in person; a welcome page with a login link otherwise."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return self.ctx.render(request, "welcome.html")
            return signed_in.page(self.ctx, request, who, "home.html", section="dashboard")

    async def logout(self, request: Request) -> Response:
        try:
            form = await read_params(request, query=False)
            presented = form.get("authenticity_token")
        except BadParameters:
            presented = None
        async with self.ctx.db.session(write=True) as session:
            row = await sessions.load(session, request)
            if row is not None and sessions.csrf_ok(row, presented):
                await sessions.end(session, row)
        response = RedirectResponse("/login/canvas?" + urlencode({}), status_code=302)
        sessions.clear_cookie(response, secure=self.ctx.settings.secure_cookies)
        return response
