"""Profile settings: the signed-in person's name, login and email, and their Approved
Integrations (spec 11.3), with a new manual token, its details, regeneration and deletion.

Every page needs a signed-in person (``signed_in.viewer``); every form is a POST carrying the
session's CSRF token, checked before anything is read or changed, and works without
JavaScript. A new (or regenerated) token is shown once, in the answer to the POST that made it:
only its digest is stored, so no later page can show it again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.access_tokens import manual
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.models import AccessToken, DeveloperKey, Login
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import Params

SETTINGS = "/profile/settings"


def _shown(row: AccessToken, key: DeveloperKey) -> dict[str, Any]:
    """One row of Approved Integrations, as the page shows it."""
    return {
        "id": row.id,
        "app_name": manual.NO_APP if key.is_default else key.app_name,
        "purpose": row.purpose or "",
        "expires_at": manual.api_time(row.permanent_expires_at),
        "last_used_at": manual.api_time(row.last_used_at),
        "created_at": manual.api_time(row.created_at),
        "hint": f"{row.token_hint}..." if key.is_default else None,
        "scopes": list(row.scopes),
        "expired": manual.is_expired(row),
        "regenerable": key.is_default,
    }


class ProfilePages:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    def _page(
        self, request: Request, who: signed_in.Viewer, name: str, status: int = 200, **values: Any
    ) -> Response:
        return signed_in.page(
            self.ctx, request, who, f"access_tokens/{name}", status, section="profile", **values
        )

    def _message(
        self, request: Request, who: signed_in.Viewer, status: int, title: str, text: str
    ) -> Response:
        return signed_in.page(
            self.ctx, request, who, "message.html", status, section="profile", title=title, message=text
        )

    async def _form(self, request: Request, who: signed_in.Viewer) -> Params | Response:
        return await signed_in.checked_form(self.ctx, request, who, section="profile")

    async def _own(
        self, session: AsyncSession, who: signed_in.Viewer, raw: str
    ) -> tuple[AccessToken, DeveloperKey] | None:
        """One of the viewer's visible tokens, by id only (no hints in page addresses)."""
        if not raw.isascii() or not raw.isdigit():
            return None
        found = await manual.find_user_token(session, who.user.id, raw)
        if found is None or found[1].internal_service:
            return None
        return found

    def _not_found(self, request: Request, who: signed_in.Viewer) -> Response:
        return self._message(request, who, 404, "Not found", "That token does not exist.")

    async def settings(self, request: Request) -> Response:
        """GET /profile/settings."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            login = await session.scalar(
                select(Login.unique_id).where(Login.user_id == who.user.id).order_by(Login.id).limit(1)
            )
            rows = await manual.visible_tokens(session, who.user.id)
            return self._page(
                request, who, "settings.html", login=login, tokens=[_shown(row, key) for row, key in rows]
            )

    async def new_token_form(self, request: Request) -> Response:
        """GET /profile/tokens/new: the "+ New Access Token" form."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            key = await manual.find_default_key(session)
            return self._new_form(request, who, key)

    def _new_form(
        self,
        request: Request,
        who: signed_in.Viewer,
        key: DeveloperKey | None,
        status: int = 200,
        **values: Any,
    ) -> Response:
        offered = list(key.scopes) if key is not None and key.require_scopes else []
        return self._page(request, who, "new.html", status, offered_scopes=offered, **values)

    async def create(self, request: Request) -> Response:
        """POST /profile/tokens: makes the token and shows it, this once."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            form = await self._form(request, who)
            if isinstance(form, Response):
                return form
            try:
                purpose = (form.get("purpose") or "").strip()
                expires_at = form.get("expires_at")
                scopes = form.get_all("scopes[]")
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            try:
                made = await manual.create(
                    session, user_id=who.user.id, purpose=purpose, expires_at=expires_at, scopes=scopes
                )
            except manual.ManualTokenError as exc:
                key = await manual.find_default_key(session)
                return self._new_form(
                    request,
                    who,
                    key,
                    400,
                    error=exc.sentence,
                    purpose=purpose,
                    expires_at=expires_at or "",
                    chosen=scopes,
                )
            return self._page(
                request,
                who,
                "made.html",
                token=made.token,
                shown=_shown(made.row, made.key),
                regenerated=False,
            )

    async def details(self, request: Request) -> Response:
        """GET /profile/tokens/:id: one token's details, with Regenerate and Delete."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            found = await self._own(session, who, request.path_params["token_id"])
            if found is None:
                return self._not_found(request, who)
            return self._page(request, who, "details.html", token=_shown(*found))

    async def regenerate(self, request: Request) -> Response:
        """POST /profile/tokens/:id/regenerate: a new token string on the same row (Canvas's
        Regenerate); an expired token needs a new expiration date."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            form = await self._form(request, who)
            if isinstance(form, Response):
                return form
            found = await self._own(session, who, request.path_params["token_id"])
            if found is None or not found[1].is_default:
                return self._not_found(request, who)
            row, key = found
            try:
                expires_at = form.get("expires_at")
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            given = bool(expires_at and expires_at.strip())
            try:
                new_token = await manual.update(
                    session,
                    row,
                    key,
                    purpose=None,
                    expires_at=expires_at,
                    expires_given=given,
                    scopes=None,
                    regenerate=True,
                )
            except manual.ManualTokenError as exc:
                return self._page(
                    request, who, "details.html", 400, token=_shown(row, key), error=exc.sentence
                )
            return self._page(
                request, who, "made.html", token=new_token, shown=_shown(row, key), regenerated=True
            )

    async def delete(self, request: Request) -> Response:
        """POST /profile/tokens/:id/delete: revoked at once, on every instance."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            form = await self._form(request, who)
            if isinstance(form, Response):
                return form
            found = await self._own(session, who, request.path_params["token_id"])
            if found is None:
                return self._not_found(request, who)
            await manual.revoke(session, found[0])
        return RedirectResponse(SETTINGS, status_code=303)
