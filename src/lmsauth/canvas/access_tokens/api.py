"""The Access Tokens API (spec 11.2, ``TokensController``), behind ``CanvasApi.protected``.

Who may do what (``AccessToken``'s policy, with the account admin holding every admin right):
a person lists, makes, reads, changes and deletes their own tokens; an account admin also
lists anyone's manual tokens, reads them, and deletes any token of anyone. Anything else on
another person's tokens is Canvas's 401 ``unauthorized``, decided before any lookup, so the
answer never tells whether that person or token exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.access_tokens import manual
from lmsauth.canvas.bearer import Bearer
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import bad_request, not_found, unauthorized
from lmsauth.canvas.models import AccessToken, DeveloperKey, User, local_id
from lmsauth.canvas.pagination import page_request, paginate
from lmsauth.core.db import Database, row_id
from lmsauth.core.fastread import ReadQuery
from lmsauth.core.web import ORJSONResponse, Params

TOKEN_PARAMS = ("token[purpose]", "token[expires_at]", "token[regenerate]", "token[scopes][]")


@dataclass(frozen=True, slots=True)
class Owner:
    """The user ``:user_id`` names, and whether the caller is that user."""

    user: User
    is_caller: bool


def _owner_id(bearer: Bearer, raw: str, *, admin_may: bool) -> int | None:
    """``self``, or a user id (local or global). Another person's id is refused before it is
    looked up unless an admin may act on it."""
    if raw == "self":
        user_id: int | None = bearer.user.id
    elif raw.isascii() and raw.isdigit() and len(raw) <= 19:
        user_id = row_id(local_id(int(raw)))
    else:
        raise not_found()
    if user_id != bearer.user.id and not (admin_may and bearer.user.is_admin):
        raise unauthorized()
    return user_id


async def _owner(session: AsyncSession, bearer: Bearer, raw: str, *, admin_may: bool) -> Owner:
    user_id = _owner_id(bearer, raw, admin_may=admin_may)
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or user.workflow_state == "deleted":
        raise not_found()
    return Owner(user, user.id == bearer.user.id)


_USER_STATE = ReadQuery(select(User.workflow_state).where(User.id == bindparam("user_id")))


async def _listable(db: Database, user_id: int) -> bool:
    """Whether another person's tokens may be listed: the person exists and is not deleted."""
    row = await db.reads.one(_USER_STATE, user_id=user_id)
    return row is not None and row[0] != "deleted"


async def _token(session: AsyncSession, owner: Owner, raw: str) -> tuple[AccessToken, DeveloperKey]:
    found = await manual.find_user_token(session, owner.user.id, raw)
    if found is None:
        raise not_found()
    return found


class AccessTokensApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def list_user_generated(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/users/:user_id/user_generated_tokens: manual tokens, 10 a page."""
        asked = page_request(params)
        user_id = _owner_id(bearer, request.path_params["user_id"], admin_may=True)
        if user_id is None or (user_id != bearer.user.id and not await _listable(self.ctx.db, user_id)):
            raise not_found()  # the caller's own user is live: the bearer's read checked it
        page = await manual.user_generated_page(
            self.ctx.db, user_id, offset=asked.offset, limit=asked.per_page
        )
        body = [manual.token_json(row, page.key) for row in page.tokens] if page.key is not None else []
        response = ORJSONResponse(body)
        return paginate(response, request, self.ctx.settings.public_url, asked, page.total)

    async def create(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST /api/v1/users/:user_id/tokens: the one answer that shows the whole token."""
        purpose, expires_at = params.get("token[purpose]"), params.get("token[expires_at]")
        scopes = params.get_all("token[scopes][]")
        async with self.ctx.db.session(write=True) as session:
            owner = await _owner(session, bearer, request.path_params["user_id"], admin_may=False)
            try:
                made = await manual.create(
                    session, user_id=owner.user.id, purpose=purpose, expires_at=expires_at, scopes=scopes
                )
            except manual.ManualTokenError as exc:
                raise exc.wire() from None
            body = manual.token_json(made.row, made.key, made.token)
        return ORJSONResponse(body, headers={"Cache-Control": "no-store"})

    async def show(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/users/:user_id/tokens/:id (the id or the token hint). An admin reads
        another person's manual tokens only (Canvas's ``view_user_generated_access_tokens``)."""
        async with self.ctx.db.session() as session:
            owner = await _owner(session, bearer, request.path_params["user_id"], admin_may=True)
            row, key = await _token(session, owner, request.path_params["id"])
            if not owner.is_caller and not key.is_default:
                raise unauthorized()
            body = manual.token_json(row, key)
        return ORJSONResponse(body)

    async def update(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """PUT /api/v1/users/:user_id/tokens/:id: ``token[regenerate]`` (manual tokens: a new
        token string on the same row, shown in this answer only), ``token[expires_at]``,
        ``token[purpose]``, ``token[scopes][]``."""
        if not any(name in params for name in TOKEN_PARAMS):
            raise bad_request("param is missing or the value is empty: token")
        purpose = params.get("token[purpose]")
        expires_at = params.get("token[expires_at]")
        regenerate = (params.get("token[regenerate]") or "").strip().lower() in manual.TRUTHY
        scopes = params.get_all("token[scopes][]") if "token[scopes][]" in params else None
        async with self.ctx.db.session(write=True) as session:
            owner = await _owner(session, bearer, request.path_params["user_id"], admin_may=False)
            row, key = await _token(session, owner, request.path_params["id"])
            try:
                new_token = await manual.update(
                    session,
                    row,
                    key,
                    purpose=purpose,
                    expires_at=expires_at,
                    expires_given="token[expires_at]" in params,
                    scopes=scopes,
                    regenerate=regenerate,
                )
            except manual.ManualTokenError as exc:
                raise exc.wire() from None
            body = manual.token_json(row, key, new_token)
        return ORJSONResponse(body, headers={"Cache-Control": "no-store"} if new_token else None)

    async def delete(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """DELETE /api/v1/users/:user_id/tokens/:id: any of the user's tokens, OAuth ones too;
        the answer is the token's JSON in its ``deleted`` state."""
        async with self.ctx.db.session(write=True) as session:
            owner = await _owner(session, bearer, request.path_params["user_id"], admin_may=True)
            row, key = await _token(session, owner, request.path_params["id"])
            await manual.revoke(session, row)
            body = manual.token_json(row, key)
        return ORJSONResponse(body)
