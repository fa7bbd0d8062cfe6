"""Canvas's login pages: /login, /login/canvas, /logout and the signed-in home page.

Signing in checks the password with argon2id (an unknown login costs the same time), needs
the form's CSRF token, and always issues a new session id; a pending OAuth request survives
it, as ``Login::Shared`` keeps ``session[:oauth2]``. Attempts are throttled per login name and
per client address (``core.ratelimit.LoginThrottle``): a growing delay, then a lock.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import sessions
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.models import DeveloperKey, Login
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
        async with self.ctx.db.session(write=True) as session:
            browser = await sessions.load_or_start(session, request)
            if browser.row.user_id is not None and not force_login:
                pending = browser.row.data.get("oauth2")
                if isinstance(pending, dict):
                    user = await usable_user(session, browser.row.user_id)
                    key = await session.get(DeveloperKey, pending["client_id"])
                    if user is not None and key is not None and key.workflow_state == "active":
                        return await self.provider.confirmation_redirect(session, browser.row, key, user)
                return RedirectResponse("/", status_code=302)
            response = self.ctx.render(
                request,
                "login.html",
                csrf=sessions.csrf_token(browser.row),
                unique_id=unique_id,
                force_login=force_login,
            )
        if browser.token:
            sessions.set_cookie(response, browser.token, secure=self.ctx.settings.secure_cookies)
        return response

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
        async with self.ctx.db.session(write=True) as session:
            current = await sessions.load(session, request)
            if not sessions.csrf_ok(current, presented_csrf):
                await throttle.not_attempted(address, unique_id)
                return self.ctx.render(
                    request,
                    "message.html",
                    422,
                    title="Invalid form",
                    message="The form expired or was not sent from this site. Go back, reload and try again.",
                )
            assert current is not None
            login = await session.scalar(
                select(Login).where(
                    Login.unique_id_normalized == unique_id.lower(),
                    Login.workflow_state == "active",
                )
            )
            user = await usable_user(session, login.user_id) if login is not None else None
            ok = secrets.verify_password(login.password_hash if login else None, password)
            if not ok or login is None or user is None:
                metrics.failure("canvas", "login_failed")
                return self.ctx.render(
                    request,
                    "login.html",
                    400,
                    csrf=sessions.csrf_token(current),
                    unique_id=unique_id,
                    force_login=force_login,
                    error=LOGIN_FAILED,
                )
            await throttle.succeeded(address, unique_id)
            login.last_login_at = clock.now()
            fresh = await sessions.sign_in(session, current, user.id)
            assert fresh.token is not None
            pending = fresh.row.data.get("oauth2")
            key = await session.get(DeveloperKey, pending["client_id"]) if isinstance(pending, dict) else None
            if key is not None and key.workflow_state == "active":
                response = await self.provider.confirmation_redirect(session, fresh.row, key, user)
            else:
                response = RedirectResponse("/", status_code=302)
        sessions.set_cookie(response, fresh.token, secure=self.ctx.settings.secure_cookies)
        return response

    async def home(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            row = await sessions.load(session, request)
            user = await usable_user(session, row.user_id) if row else None
            csrf = sessions.csrf_token(row) if row and user else None
            return self.ctx.render(request, "home.html", user=user, csrf=csrf)

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
