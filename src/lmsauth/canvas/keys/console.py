"""The admin console's Developer Keys pages (Canvas's Admin > Developer Keys), server-rendered
forms that work without JavaScript:

- ``GET /accounts/:account_id/developer_keys``: the account's keys, each with its client id,
  whether it is on, its scope count, its secret behind "Show key", and its actions;
- ``GET .../developer_keys/new`` and ``POST .../developer_keys``: a new key, ``off`` until an
  admin turns it on, as a key made through the API;
- ``GET``/``POST .../developer_keys/:id``: name, redirect URIs and scopes (one per line),
  whether scopes are required, the client-credentials audience;
- ``POST .../developer_keys/:id/binding`` (``on``/``off``) and ``.../delete``;
- an LTI key's page also shows its tool configuration, its deployments, and the platform
  values a tool is configured with (issuer, login, token and key set URLs).

Every form posts the session's CSRF token; a person who is not signed in is sent to log in, a
non-admin gets the "Unauthorized" page, and a refused form changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import accounts, sessions, signed_in
from lmsauth.canvas.context import PAGES, SHARED_PAGES, CanvasContext
from lmsauth.canvas.keys import lti, service
from lmsauth.canvas.keys.service import KeyInvalid
from lmsauth.canvas.models import Account, DeveloperKey
from lmsauth.canvas.signed_in import Viewer
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import Params, read_params, templates

KEY_PAGES = Path(__file__).parent / "pages"
SECTION = "developer_keys"
PER_PAGE = 100
AUDIENCE_CHOICES = ("", "external")


def _lines(text: str | None) -> list[str]:
    return (text or "").split()


def form_changes(form: Params) -> dict[str, Any]:
    """What the edit form sets: every field, an unticked box being false."""
    return {
        "name": (form.get("name") or "").strip(),
        "redirect_uris": _lines(form.get("redirect_uris")),
        "scopes": _lines(form.get("scopes")),
        "require_scopes": form.get("require_scopes") is not None,
        "client_credentials_audience": form.get("client_credentials_audience") or None,
        "notes": form.get("notes") or None,
    }


class DeveloperKeysConsole:
    def __init__(self, ctx: CanvasContext) -> None:
        # The same context, with this package's pages looked up before Canvas's own.
        self.ctx = dataclasses.replace(ctx, pages=templates(KEY_PAGES, PAGES, SHARED_PAGES))

    def _page(self, request: Request, who: Viewer, name: str, status: int = 200, **values: Any) -> Response:
        return signed_in.page(
            self.ctx,
            request,
            who,
            name,
            status,
            section=SECTION,
            account_path=request.path_params["account_id"],
            **values,
        )

    def _back(self, request: Request, suffix: str = "") -> Response:
        return RedirectResponse(
            f"/accounts/{request.path_params['account_id']}/developer_keys{suffix}", status_code=303
        )

    async def _admin(self, session: AsyncSession, request: Request) -> tuple[Viewer, Account] | Response:
        """The signed-in admin and the account of the path, or the page that refuses them."""
        who = await signed_in.viewer(session, request)
        if who is None:
            return signed_in.to_login()
        if not who.is_admin:
            return signed_in.not_authorized_page(self.ctx, request, who)
        account = await accounts.find_account(session, request.path_params["account_id"])
        if account is None:
            return self._message(request, who, 404, "Page Not Found", "There is no such account.")
        return who, account

    async def _admin_posting(
        self, session: AsyncSession, request: Request, form: Params | None
    ) -> tuple[Viewer, Account, Params] | Response:
        """``_admin``, and the form with its CSRF token checked: a refused form changes nothing."""
        found = await self._admin(session, request)
        if isinstance(found, Response):
            return found
        who, account = found
        if form is None or not sessions.csrf_ok(who.row, form.get("authenticity_token")):
            return self._bad_form(request, who)
        return who, account, form

    def _no_such_key(self, request: Request, who: Viewer) -> Response:
        return self._message(request, who, 404, "Page Not Found", "There is no such developer key.")

    def _message(self, request: Request, who: Viewer, status: int, title: str, message: str) -> Response:
        return self._page(request, who, "message.html", status, title=title, message=message)

    def _bad_form(self, request: Request, who: Viewer) -> Response:
        return self._message(
            request,
            who,
            422,
            "Invalid form",
            "The form expired or was not sent from this site. Go back, reload and try again.",
        )

    async def _form(self, request: Request) -> Params | None:
        try:
            return await read_params(request, query=False)
        except BadParameters:
            return None

    async def _key(self, session: AsyncSession, request: Request, account: Account) -> DeveloperKey | None:
        key = await service.find_key(session, request.path_params["developer_key_id"])
        return key if key is not None and key.account_id == account.id else None

    async def index(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            found = await self._admin(session, request)
            if isinstance(found, Response):
                return found
            who, account = found
            rows, _total = await service.account_keys(session, account, offset=0, limit=PER_PAGE)
            secret_key = self.ctx.settings.resolved_secret_key
            listed = [(row, service.api_key(row, secret_key)) for row in rows]
            return self._page(request, who, "developer_keys.html", keys=listed, account=account)

    async def new(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            found = await self._admin(session, request)
            if isinstance(found, Response):
                return found
            who, _account = found
            return self._edit_page(request, who, None, form_changes(Params([])))

    def _edit_page(
        self,
        request: Request,
        who: Viewer,
        key: DeveloperKey | None,
        values: dict[str, Any],
        *,
        error: str | None = None,
        secret: str | None = None,
        lti_key: dict[str, Any] | None = None,
    ) -> Response:
        return self._page(
            request,
            who,
            "developer_key.html",
            422 if error else 200,
            key=key,
            values=values,
            error=error,
            secret=secret,
            audiences=AUDIENCE_CHOICES,
            lti_key=lti_key,
        )

    async def create(self, request: Request) -> Response:
        form = await self._form(request)
        async with self.ctx.db.session(write=True) as session:
            found = await self._admin_posting(session, request, form)
            if isinstance(found, Response):
                return found
            who, _account, posted = found
            values = form_changes(posted)
            try:
                key = await service.create_key(
                    session, values, secret_key=self.ctx.settings.resolved_secret_key, user_id=who.user.id
                )
            except KeyInvalid as exc:
                return self._edit_page(request, who, None, values, error=f"{exc.attribute}: {exc.message}")
            return self._back(request, f"/{key.client_id}")

    async def show(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            found = await self._admin(session, request)
            if isinstance(found, Response):
                return found
            who, account = found
            key = await self._key(session, request, account)
            if key is None:
                return self._no_such_key(request, who)
            values = {
                "name": key.name,
                "redirect_uris": list(key.redirect_uris),
                "scopes": list(key.scopes),
                "require_scopes": key.require_scopes,
                "client_credentials_audience": key.client_credentials_audience,
                "notes": key.notes,
            }
            secret = service.api_key(key, self.ctx.settings.resolved_secret_key)
            lti_key = await self._lti_key(session, key) if key.is_lti_key else None
            return self._edit_page(request, who, key, values, secret=secret, lti_key=lti_key)

    async def _lti_key(self, session: AsyncSession, key: DeveloperKey) -> dict[str, Any]:
        """What an LTI key's page shows: its configuration, its deployments, and the platform
        values a tool's configuration needs (spec lti13.md 1)."""
        tools = await lti.lti_tools(session, key)
        return {
            "configuration": json.dumps(key.tool_configuration or {}, indent=2, sort_keys=True),
            "deployments": [
                (tool.id, tool.course_id, await lti.tool_deployment_id(session, tool)) for tool in tools
            ],
            "platform": lti.platform_urls(self.ctx.settings.public_url),
        }

    async def _change(self, request: Request, action: str) -> Response:
        """One of the key's forms: ``save`` its fields, set its ``binding``, or ``delete`` it."""
        form = await self._form(request)
        async with self.ctx.db.session(write=True) as session:
            found = await self._admin_posting(session, request, form)
            if isinstance(found, Response):
                return found
            who, account, posted = found
            key = await self._key(session, request, account)
            if key is None:
                return self._no_such_key(request, who)
            if action == "delete":
                await service.delete_key(session, key)
                return self._back(request)
            if action == "binding":
                state = posted.get("state")
                if state not in ("on", "off"):
                    return self._message(request, who, 400, "Bad request", "The state must be on or off.")
                await service.set_binding(session, key, state)
                return self._back(request)
            values = form_changes(posted)
            try:
                await service.change_key(session, key, values, drop_unknown_scopes=False)
            except KeyInvalid as exc:  # refused before anything was written
                secret = service.api_key(key, self.ctx.settings.resolved_secret_key)
                error = f"{exc.attribute}: {exc.message}"
                return self._edit_page(request, who, key, values, error=error, secret=secret)
            return self._back(request)

    async def update(self, request: Request) -> Response:
        return await self._change(request, "save")

    async def set_binding(self, request: Request) -> Response:
        return await self._change(request, "binding")

    async def delete(self, request: Request) -> Response:
        return await self._change(request, "delete")
