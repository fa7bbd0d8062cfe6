"""The Users and Logins APIs for account admins (Canvas's ``UsersController`` and
``PseudonymsController``), behind ``CanvasApi.protected``.

Order of checks, as Canvas's: the account (404), then the caller's right (Canvas's 401
``unauthorized``), then the input (400 with the model's errors). ``self`` names the root account
wherever ``:account_id`` appears and the caller wherever ``:user_id`` does. A person may read
and edit their own profile; everything else is for account admins.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lmsauth.canvas.accounts import find_account
from lmsauth.canvas.bearer import Bearer
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import not_found, unauthorized
from lmsauth.canvas.models import Account
from lmsauth.canvas.pagination import page_request, paginate
from lmsauth.canvas.people import users
from lmsauth.canvas.people.users import Invalid, Person, Profile, Search, SearchTermTooShort
from lmsauth.core.errors import WireError
from lmsauth.core.web import Params

_ADMIN_ONLY_FIELDS = ("sis_user_id", "integration_id", "sis_import_id", "login_id")


def _include_values(params: Params) -> set[str]:
    return set(params.get_all("include[]") + params.get_all("include"))


def _profile(params: Params) -> Profile:
    return Profile(
        name=params.get("user[name]"),
        short_name=params.get("user[short_name]"),
        sortable_name=params.get("user[sortable_name]"),
        email=params.get("user[email]"),
        locale=params.get("user[locale]"),
        time_zone=params.get("user[time_zone]"),
    )


def _invalid(body: dict[str, Any]) -> WireError:
    return WireError(400, {"errors": body})


def _as_seen_by(bearer: Bearer, person: Person, includes: set[str] | frozenset[str]) -> dict[str, Any]:
    body = users.user_json(person, includes)
    if not bearer.user.is_admin:
        for name in _ADMIN_ONLY_FIELDS:
            body.pop(name, None)
    return body


class PeopleApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def _account(self, session: AsyncSession, request: Request) -> Account:
        account = await find_account(session, request.path_params["account_id"])
        if account is None:
            raise not_found()
        return account

    @staticmethod
    async def _person(session: AsyncSession, bearer: Bearer, raw: str) -> Person:
        user_id = bearer.user.id if raw == "self" else users.parse_id(raw)
        person = await users.find_person(session, user_id)
        if person is None:
            raise not_found()
        return person

    @staticmethod
    def _require_admin(bearer: Bearer) -> None:
        if not bearer.user.is_admin:
            raise unauthorized()

    def _page(self, request: Request, body: list[dict[str, Any]], asked: Any, total: int) -> Response:
        return paginate(JSONResponse(body), request, self.ctx.settings.public_url, asked, total)

    # ------------------------------------------------------------------------ users

    async def list_users(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/accounts/:account_id/users: ``search_term``, ``sort``, ``order``, paged."""
        async with self.ctx.db.session() as session:
            await self._account(session, request)
            self._require_admin(bearer)
            try:
                search = Search.of(params.get("search_term"), params.get("sort"), params.get("order"))
            except SearchTermTooShort as exc:
                raise WireError(
                    400, {"errors": [{"field": "search_term", "code": "invalid", "message": exc.message}]}
                ) from None
            asked = page_request(params)
            people, total = await users.list_people(session, search, asked)
        includes = _include_values(params) & users.LIST_INCLUDES
        return self._page(request, [users.user_json(person, includes) for person in people], asked, total)

    async def create_user(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST /api/v1/accounts/:account_id/users: ``user[...]``, ``pseudonym[...]``; the
        email from ``communication_channel[address]`` (type ``email``) or ``pseudonym[unique_id]``."""
        profile = _profile(params)
        channel = params.get("communication_channel[address]")
        if channel and params.get("communication_channel[type]") in (None, "email"):
            profile.email = channel
        try:
            async with self.ctx.db.session(write=True) as session:
                await self._account(session, request)
                self._require_admin(bearer)
                person = await users.create_person(
                    session,
                    unique_id=params.get("pseudonym[unique_id]") or "",
                    password=params.get("pseudonym[password]"),
                    profile=profile,
                    sis_user_id=params.get("pseudonym[sis_user_id]"),
                )
                body = users.user_json(person)
        except Invalid as problems:
            raise _invalid(
                {
                    "user": problems.user,
                    "pseudonym": problems.pseudonym,
                    "observee": {},
                    "pairing_code": {},
                    "recaptcha": None,
                }
            ) from None
        return JSONResponse(body)

    async def show_user(self, bearer: Bearer, raw: str, includes: set[str]) -> Response:
        """GET /api/v1/users/:id for a user other than ``self`` (``canvas.api.show_user``
        answers ``self``): the user themself, or an account admin."""
        async with self.ctx.db.session() as session:
            person = await self._person(session, bearer, raw)
        if person.user.id != bearer.user.id:
            self._require_admin(bearer)
        shown = users.SHOW_INCLUDES | (includes & {"uuid", "last_login"})
        return JSONResponse(_as_seen_by(bearer, person, shown))

    async def update_user(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """PUT /api/v1/users/:id: the name fields, locale and time zone (the user themself or an
        admin); ``user[email]`` and ``user[event]=suspend|unsuspend`` (admins only)."""
        profile = _profile(params)
        event = params.get("user[event]")
        try:
            async with self.ctx.db.session(write=True) as session:
                person = await self._person(session, bearer, request.path_params["user_id"])
                if person.user.id != bearer.user.id or event is not None or profile.email is not None:
                    self._require_admin(bearer)
                if event not in (None, "suspend", "unsuspend"):
                    raise _invalid(
                        {"event": [users.field_error("event", "inclusion", "is not included in the list")]}
                    )
                await users.update_profile(session, person, profile)
                if event is not None:
                    await users.set_suspended(session, person, event == "suspend")
                    person = Person(person.user, await users.primary_login(session, person.user.id))
                body = _as_seen_by(bearer, person, users.SHOW_INCLUDES)
        except Invalid as problems:
            raise _invalid(problems.user) from None
        return JSONResponse(body)

    async def delete_user(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """DELETE /api/v1/accounts/:account_id/users/:user_id: Canvas's soft delete; the
        answer is the user as they were."""
        async with self.ctx.db.session(write=True) as session:
            await self._account(session, request)
            person = await self._person(session, bearer, request.path_params["user_id"])
            self._require_admin(bearer)
            body = users.user_json(person)
            await users.delete_person(session, person)
        return JSONResponse(body)

    # ------------------------------------------------------------------------ logins

    async def account_logins(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/accounts/:account_id/logins (of one user with ``user[id]``)."""
        async with self.ctx.db.session() as session:
            account = await self._account(session, request)
            self._require_admin(bearer)
            user_id = None
            raw = params.get("user[id]")
            if raw is not None:
                user_id = (await self._person(session, bearer, raw)).user.id
            asked = page_request(params)
            logins, total = await users.list_logins(session, account.id, user_id, asked)
        return self._page(request, [users.pseudonym_json(login) for login in logins], asked, total)

    async def user_logins(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/users/:user_id/logins: the user themself, or an admin."""
        async with self.ctx.db.session() as session:
            person = await self._person(session, bearer, request.path_params["user_id"])
            if person.user.id != bearer.user.id:
                self._require_admin(bearer)
            asked = page_request(params)
            account = await find_account(session, "self")
            assert account is not None  # a user exists, so their account does
            logins, total = await users.list_logins(session, account.id, person.user.id, asked)
        return self._page(request, [users.pseudonym_json(login) for login in logins], asked, total)

    async def update_login(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """PUT /api/v1/accounts/:account_id/logins/:id: ``login[unique_id]``,
        ``login[password]``, ``login[sis_user_id]``, ``login[workflow_state]``."""
        try:
            async with self.ctx.db.session(write=True) as session:
                account = await self._account(session, request)
                login = await users.find_login(
                    session, account.id, users.parse_id(request.path_params["login_id"])
                )
                if login is None:
                    raise not_found()
                self._require_admin(bearer)
                login = await users.update_login(
                    session,
                    login,
                    unique_id=params.get("login[unique_id]"),
                    password=params.get("login[password]"),
                    sis_user_id=params.get("login[sis_user_id]"),
                    workflow_state=params.get("login[workflow_state]"),
                )
                body = users.pseudonym_json(login)
        except Invalid as problems:
            raise _invalid(problems.pseudonym) from None
        return JSONResponse(body)
