"""The admin console's People pages under ``/accounts/self/users``: search and page through
the account's people, add one, and on a person's page edit the profile, reset the password,
suspend or unsuspend, and delete (after a confirmation page).

Account admins only: a signed-in non-admin gets the "not authorized" page, an anonymous
visitor the login page. Every change is a POST form carrying the session's
``authenticity_token``; a missing or wrong one changes nothing (422, as Rails answers it).
The pages need no JavaScript.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lmsauth.canvas import admin, signed_in
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.pagination import PageRequest, page_request
from lmsauth.canvas.people import users
from lmsauth.canvas.people.users import Invalid, Person, Profile, Search, SearchTermTooShort
from lmsauth.canvas.signed_in import Viewer
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.web import Params, read_params

PAGE_WINDOW = 2  # page links shown either side of the current one


def page_links(search_term: str, asked: PageRequest, total: int) -> list[dict[str, Any]]:
    """Canvas's pager: First, Previous, the pages around this one, Next, Last."""
    last = max(1, -(-total // asked.per_page))
    current = min(asked.page, last)

    def href(number: int) -> str:
        query = {"search_term": search_term} if search_term else {}
        return "/accounts/self/users?" + urlencode({**query, "page": number})

    links: list[dict[str, Any]] = []
    if current > 1:
        links += [{"label": "First", "href": href(1)}, {"label": "Previous", "href": href(current - 1)}]
    for number in range(max(1, current - PAGE_WINDOW), min(last, current + PAGE_WINDOW) + 1):
        links.append({"label": str(number), "href": href(number), "current": number == current})
    if current < last:
        links += [{"label": "Next", "href": href(current + 1)}, {"label": "Last", "href": href(last)}]
    return links


class PeoplePages:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def _admin(self, session: AsyncSession, request: Request) -> tuple[Viewer | None, Response | None]:
        """The signed-in admin, or the response for anyone else."""
        who = await signed_in.viewer(session, request)
        if who is None:
            return None, signed_in.to_login()
        if not who.is_admin:
            return who, signed_in.not_authorized_page(self.ctx, request, who)
        return who, None

    def _message(self, request: Request, who: Viewer, status: int, title: str, message: str) -> Response:
        return signed_in.page(
            self.ctx, request, who, "message.html", status, title=title, message=message, section="people"
        )

    async def _form(self, request: Request, session: AsyncSession, who: Viewer) -> Params | Response:
        return await signed_in.checked_form(self.ctx, request, who, section="people")

    # ------------------------------------------------------------------------ list

    async def index(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who, refused = await self._admin(session, request)
            if refused is not None or who is None:
                return refused or signed_in.to_login()
            try:
                params = await read_params(request, body=False)
                term = (params.get("search_term") or "").strip()
                asked = page_request(params)
            except (BadParameters, WireError):
                return self._message(request, who, 404, "Page not found", "There is no such page of people.")
            values: dict[str, Any] = {"search_term": term, "rows": [], "total": 0, "pages": []}
            status = 200
            try:
                search = Search.of(term or None, params.get("sort"), params.get("order"))
            except SearchTermTooShort as exc:
                values["error"] = f"Search term: {exc.message}."
                status = 400
            else:
                people, total = await users.list_people(session, search, asked)
                rows = [{"person": p, "state": await self._state(session, p)} for p in people]
                values.update(rows=rows, total=total, pages=page_links(term, asked, total))
            values["notice"] = request.query_params.get("notice", "")[:200]
            return signed_in.page(
                self.ctx, request, who, "people_index.html", status, section="people", **values
            )

    @staticmethod
    async def _state(session: AsyncSession, person: Person) -> str:
        return (
            "suspended" if users.is_suspended(await users.login_states(session, person.user.id)) else "active"
        )

    # ------------------------------------------------------------------------ create

    async def new(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who, refused = await self._admin(session, request)
            if refused is not None or who is None:
                return refused or signed_in.to_login()
            return self._new_page(request, who, {}, [], 200)

    def _new_page(
        self, request: Request, who: Viewer, values: dict[str, Any], errors: list[str], status: int
    ) -> Response:
        return signed_in.page(
            self.ctx,
            request,
            who,
            "people_new.html",
            status,
            section="people",
            values=values,
            errors=errors,
            min_password=admin.MIN_PASSWORD_LENGTH,
        )

    async def create(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who, refused = await self._admin(session, request)
            if refused is not None or who is None:
                return refused or signed_in.to_login()
            form = await self._form(request, session, who)
            if isinstance(form, Response):
                return form
            try:
                values: dict[str, Any] = {
                    "name": form.get("user[name]") or "",
                    "unique_id": form.get("pseudonym[unique_id]") or "",
                    "email": form.get("user[email]") or "",
                    "sis_user_id": form.get("pseudonym[sis_user_id]") or "",
                    "admin": form.get("user[admin]") == "1",
                }
                password = form.get("pseudonym[password]")
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            try:
                async with session.begin_nested():
                    person = await users.create_person(
                        session,
                        unique_id=values["unique_id"],
                        password=password,
                        profile=Profile(name=values["name"], email=values["email"] or None),
                        sis_user_id=values["sis_user_id"] or None,
                        is_admin=values["admin"],
                    )
            except Invalid as problems:
                return self._new_page(request, who, values, problems.messages(), 400)
            notice = urlencode({"notice": f"Added {person.user.name}."})
            return RedirectResponse(f"/accounts/self/users/{person.user.id}?{notice}", status_code=303)

    # ------------------------------------------------------------------------ one person

    async def _person(self, session: AsyncSession, request: Request) -> Person | None:
        return await users.find_person(session, users.parse_id(request.path_params["user_id"]))

    async def _show_page(
        self,
        request: Request,
        session: AsyncSession,
        who: Viewer,
        person: Person,
        *,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        return signed_in.page(
            self.ctx,
            request,
            who,
            "people_show.html",
            status,
            section="people",
            person=person,
            state=await self._state(session, person),
            errors=errors or [],
            notice=request.query_params.get("notice", "")[:200],
            min_password=admin.MIN_PASSWORD_LENGTH,
        )

    async def show(self, request: Request) -> Response:
        async with self.ctx.db.session(write=True) as session:
            who, refused = await self._admin(session, request)
            if refused is not None or who is None:
                return refused or signed_in.to_login()
            person = await self._person(session, request)
            if person is None:
                return self._message(request, who, 404, "Not found", "There is no such person.")
            return await self._show_page(request, session, who, person)

    async def act(self, request: Request) -> Response:
        """One action of the person's page: ``update``, ``password``, ``suspend``,
        ``unsuspend``, ``delete`` (a confirmation page first, then ``confirm=yes``)."""
        async with self.ctx.db.session(write=True) as session:
            who, refused = await self._admin(session, request)
            if refused is not None or who is None:
                return refused or signed_in.to_login()
            person = await self._person(session, request)
            if person is None:
                return self._message(request, who, 404, "Not found", "There is no such person.")
            form = await self._form(request, session, who)
            if isinstance(form, Response):
                return form
            try:
                action = form.get("action")
                done = await self._do(session, person, action, form)
            except BadParameters as exc:
                return self._message(request, who, 400, "Bad request", exc.message)
            except Invalid as problems:
                return await self._show_page(
                    request, session, who, person, errors=problems.messages(), status=400
                )
            if done is None:
                if action == "delete":
                    return signed_in.page(
                        self.ctx, request, who, "people_delete.html", section="people", person=person
                    )
                return self._message(request, who, 400, "Bad request", "Unknown action.")
            if action == "delete":
                return RedirectResponse(
                    "/accounts/self/users?" + urlencode({"notice": done}), status_code=303
                )
            notice = urlencode({"notice": done})
            return RedirectResponse(f"/accounts/self/users/{person.user.id}?{notice}", status_code=303)

    @staticmethod
    async def _do(session: AsyncSession, person: Person, action: str | None, form: Params) -> str | None:
        """Carry out ``action``; what to tell the admin, or None when nothing was done."""
        name = person.user.name
        if action == "update":
            async with session.begin_nested():
                await users.update_profile(
                    session,
                    person,
                    Profile(name=form.get("user[name]"), email=form.get("user[email]") or ""),
                    is_admin=form.get("user[admin]") == "1",
                )
            return "Profile saved."
        if action == "password":
            async with session.begin_nested():
                await users.set_password(session, person, form.get("password") or "")
            return "Password reset."
        if action in ("suspend", "unsuspend"):
            await users.set_suspended(session, person, action == "suspend")
            return f"{name} is {action}ed."
        if action == "delete" and form.get("confirm") == "yes":
            await users.delete_person(session, person)
            return f"Deleted {name}."
        return None
