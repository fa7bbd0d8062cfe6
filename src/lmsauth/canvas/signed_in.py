"""Who is looking at a Canvas page: the signed-in person behind the browser session, and what
every signed-in page needs (the layout's navigation and the session's form token).

Pages that need a person call ``viewer``; pages for account admins answer a non-admin with
``not_authorized_page``, as Canvas shows "Unauthorized" rather than a redirect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import sessions
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.models import BrowserSession, User
from lmsauth.canvas.people import usable_user
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import Params, read_params


@dataclass(frozen=True, slots=True)
class Viewer:
    row: BrowserSession
    user: User

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


async def viewer(session: AsyncSession, request: Request) -> Viewer | None:
    """The signed-in user of the request's browser session, if usable (``people.usable_user``:
    not deleted, not suspended)."""
    row = await sessions.load(session, request)
    user = await usable_user(session, row.user_id) if row is not None else None
    return Viewer(row, user) if row is not None and user is not None else None


def to_login() -> Response:
    return RedirectResponse("/login/canvas", status_code=302)


def page(
    ctx: CanvasContext, request: Request, who: Viewer, name: str, status: int = 200, **values: Any
) -> Response:
    """A page in the signed-in layout. Needs a writing database session: the session's form
    token is made on first use."""
    return ctx.render(request, name, status, viewer=who.user, csrf=sessions.csrf_token(who.row), **values)


def not_authorized_page(ctx: CanvasContext, request: Request, who: Viewer) -> Response:
    return page(
        ctx,
        request,
        who,
        "message.html",
        401,
        title="Unauthorized",
        message="You are not authorized to perform that action.",
    )


FORM_EXPIRED = "The form expired or was not sent from this site. Go back, reload and try again."


async def checked_form(
    ctx: CanvasContext, request: Request, who: Viewer, section: str | None = None
) -> Params | Response:
    """A signed-in page's posted form, or the page that refuses it: 400 for a form that cannot
    be read, 422 when its ``authenticity_token`` is not the session's (nothing is changed)."""
    try:
        form = await read_params(request, query=False)
        presented = form.get("authenticity_token")
    except BadParameters as exc:
        return page(
            ctx, request, who, "message.html", 400, section=section, title="Bad request", message=exc.message
        )
    if not sessions.csrf_ok(who.row, presented):
        return page(
            ctx,
            request,
            who,
            "message.html",
            422,
            section=section,
            title="Invalid form",
            message=FORM_EXPIRED,
        )
    return form
