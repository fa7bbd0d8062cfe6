"""People's records: create, find, list, change, suspend and delete users and their logins,
and Canvas's JSON for them (``user_json``, ``pseudonym_json``). The API, the console and the CLI
all go through these functions, inside their caller's transaction.

Validation answers Canvas's ActiveRecord errors (``{"attribute","type","message"}`` per field),
raised as ``Invalid`` before anything is written: a refused request changes nothing.
Suspension and deletion go through ``canvas.admin`` (``suspend_logins``, ``soft_delete_user``),
which end browser sessions; tokens stop by ``people.USER_IS_USABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import admin
from lmsauth.canvas.models import Login, User, local_id
from lmsauth.canvas.pagination import PageRequest
from lmsauth.core import secrets
from lmsauth.core.db import row_id

MAX_NAME = 255
MIN_SEARCH_TERM = 2  # Canvas's SearchTermHelper::MIN_SEARCH_TERM_LENGTH
SORTS = ("username", "email", "sis_id", "last_login")
TAKEN_LOGIN = "ID already in use for this account and authentication provider"

FieldErrors = dict[str, list[dict[str, str]]]


def field_error(attribute: str, kind: str, message: str | None = None) -> dict[str, str]:
    """One ActiveRecord error as Canvas renders it; the message is the type unless given."""
    return {"attribute": attribute, "type": kind, "message": message or kind}


@dataclass(eq=False)
class Invalid(Exception):
    """Refused input: the user's and the login's (pseudonym's) errors, by attribute."""

    user: FieldErrors = field(default_factory=dict)
    pseudonym: FieldErrors = field(default_factory=dict)

    def add(self, part: FieldErrors, attribute: str, kind: str, message: str | None = None) -> None:
        part.setdefault(attribute, []).append(field_error(attribute, kind, message))

    def __bool__(self) -> bool:
        return bool(self.user or self.pseudonym)

    def messages(self) -> list[str]:
        """For people (console, CLI): "unique_id: ID already in use ..."."""
        return [
            f"{name}: {error['message']}"
            for part in (self.user, self.pseudonym)
            for name, errors in part.items()
            for error in errors
        ]


@dataclass(frozen=True, slots=True)
class Person:
    """A user and the login this server shows for them (their first live one, if any)."""

    user: User
    login: Login | None


# ---------------------------------------------------------------------------- JSON


def iso(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def name_parts(sortable_name: str) -> tuple[str, str]:
    """``first_name`` and ``last_name`` from the sortable name ("Last, First")."""
    last, comma, first = sortable_name.partition(", ")
    return (first, last) if comma else (sortable_name, "")


SHOW_INCLUDES = frozenset({"locale", "avatar_url", "email", "effective_locale", "time_zone"})
LIST_INCLUDES = frozenset({"avatar_url", "email", "last_login", "time_zone", "uuid"})


def user_json(person: Person, includes: frozenset[str] | set[str] = SHOW_INCLUDES) -> dict[str, Any]:
    """Canvas's ``user_json`` as an account admin sees it (the Users API's User object)."""
    user, login = person.user, person.login
    first, last = name_parts(user.sortable_name)
    body: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "created_at": iso(user.created_at),
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "first_name": first,
        "last_name": last,
        "sis_user_id": login.sis_user_id if login else None,
        "integration_id": None,
        "sis_import_id": None,
        "login_id": login.unique_id if login else None,
    }
    if "avatar_url" in includes and user.avatar_url:
        body["avatar_url"] = user.avatar_url
    if "email" in includes:
        body["email"] = user.email
    if "locale" in includes:
        body["locale"] = user.locale
    if "effective_locale" in includes:
        body["effective_locale"] = user.locale or "en"
    if "time_zone" in includes:
        body["time_zone"] = user.time_zone
    if "last_login" in includes:
        body["last_login"] = iso(login.last_login_at) if login else None
    if "uuid" in includes:
        body["uuid"] = user.uuid
    return body


def pseudonym_json(login: Login) -> dict[str, Any]:
    """Canvas's Login object (``pseudonym_json``)."""
    return {
        "id": login.id,
        "user_id": login.user_id,
        "account_id": login.account_id,
        "unique_id": login.unique_id,
        "sis_user_id": login.sis_user_id,
        "integration_id": None,
        "authentication_provider_id": None,
        "authentication_provider_type": None,
        "created_at": iso(login.created_at),
        "workflow_state": login.workflow_state,
        "declared_user_type": None,
    }


# ---------------------------------------------------------------------------- finding


def parse_id(raw: str) -> int | None:
    """A row id from a path: a local or global id (Canvas's ``api_find``)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:  # "²".isdigit(), but int() refuses it
        return None
    return row_id(local_id(int(raw)))


async def primary_login(session: AsyncSession, user_id: int) -> Login | None:
    login: Login | None = await session.scalar(
        select(Login)
        .where(Login.user_id == user_id, Login.workflow_state != "deleted")
        .order_by(Login.id)
        .limit(1)
    )
    return login


async def find_person(session: AsyncSession, user_id: int | None) -> Person | None:
    """A user who is not deleted (suspended ones included: admins manage them)."""
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or user.workflow_state == "deleted":
        return None
    return Person(user, await primary_login(session, user.id))


async def find_login(session: AsyncSession, account_id: int, login_id: int | None) -> Login | None:
    if login_id is None:
        return None
    login: Login | None = await session.scalar(
        select(Login).where(
            Login.id == login_id, Login.account_id == account_id, Login.workflow_state != "deleted"
        )
    )
    return login


# ---------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class Search:
    term: str | None = None
    sort: str = "username"
    descending: bool = False

    @classmethod
    def of(cls, term: str | None, sort: str | None, order: str | None) -> Search:
        """Canvas's ``search_term`` (2 characters at least, else ``Invalid``), ``sort`` (an
        unknown one sorts by name) and ``order``."""
        term = term if term else None
        if term is not None and len(term) < MIN_SEARCH_TERM:
            raise SearchTermTooShort()
        return cls(term, sort if sort in SORTS else "username", order == "desc")


class SearchTermTooShort(Exception):
    message = f"{MIN_SEARCH_TERM} or more characters is required"


def _like(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matching(term: str) -> ColumnElement[bool]:
    pattern = _like(term)
    return or_(
        func.lower(User.name).like(pattern, escape="\\"),
        func.lower(User.email).like(pattern, escape="\\"),
        exists().where(
            Login.user_id == User.id,
            Login.workflow_state != "deleted",
            Login.unique_id_normalized.like(pattern, escape="\\"),
        ),
    )


def _sort_key(sort: str) -> ColumnElement[Any]:
    live = and_(Login.user_id == User.id, Login.workflow_state != "deleted")
    if sort == "email":
        return func.lower(User.email)
    if sort == "sis_id":
        first = select(func.min(Login.id)).where(live).scalar_subquery()
        return select(Login.sis_user_id).where(Login.id == first).scalar_subquery()
    if sort == "last_login":
        return select(func.max(Login.last_login_at)).where(live).scalar_subquery()
    return func.lower(User.sortable_name)


def _people_query(search: Search) -> Select[User]:
    query = select(User).where(User.workflow_state != "deleted")
    if search.term is not None:
        query = query.where(_matching(search.term))
    return query


async def list_people(session: AsyncSession, search: Search, asked: PageRequest) -> tuple[list[Person], int]:
    """One page of the account's people (not deleted), and how many there are in all. Empty
    values sort last both ways, and ties by id, so both backends give the same order."""
    query = _people_query(search)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    key = _sort_key(search.sort)
    ordered = query.order_by(
        case((key.is_(None), 1), else_=0),
        key.desc() if search.descending else key.asc(),
        User.id.desc() if search.descending else User.id.asc(),
    )
    users = list(await session.scalars(ordered.offset(asked.offset).limit(asked.per_page)))
    logins: dict[int, Login] = {}
    if users:
        rows = await session.scalars(
            select(Login)
            .where(Login.user_id.in_([user.id for user in users]), Login.workflow_state != "deleted")
            .order_by(Login.id.desc())
        )
        logins = {login.user_id: login for login in rows}
    return [Person(user, logins.get(user.id)) for user in users], total


async def list_logins(
    session: AsyncSession, account_id: int, user_id: int | None, asked: PageRequest
) -> tuple[list[Login], int]:
    """One page of the account's live logins (of one user when ``user_id`` is given)."""
    query = select(Login).where(Login.account_id == account_id, Login.workflow_state != "deleted")
    if user_id is not None:
        query = query.where(Login.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(Login.id).offset(asked.offset).limit(asked.per_page))
    return list(rows), total


# ---------------------------------------------------------------------------- changing


@dataclass
class Profile:
    """The user fields a request may set; None leaves a field as it is."""

    name: str | None = None
    short_name: str | None = None
    sortable_name: str | None = None
    email: str | None = None
    locale: str | None = None
    time_zone: str | None = None


def _check_profile(profile: Profile, problems: Invalid) -> None:
    for attribute in ("name", "short_name", "sortable_name"):
        value = getattr(profile, attribute)
        if value is not None and len(value) > MAX_NAME:
            problems.add(problems.user, attribute, "too_long")
    if (
        profile.email is not None
        and profile.email
        and (len(profile.email) > MAX_NAME or "@" not in profile.email.strip("@"))
    ):
        problems.add(problems.user, "email", "invalid")
    if profile.locale is not None and len(profile.locale) > 16:
        problems.add(problems.user, "locale", "invalid")
    if profile.time_zone and not _known_time_zone(profile.time_zone):
        problems.add(problems.user, "time_zone", "invalid")


def _known_time_zone(name: str) -> bool:
    """An IANA time zone name (``America/Denver``); Canvas also takes Rails' names."""
    if len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _apply_profile(user: User, profile: Profile) -> None:
    if profile.name is not None and profile.name.strip():
        user.name = profile.name.strip()
        sortable, short = admin.derived_names(user.name)
        if profile.sortable_name is None:
            user.sortable_name = sortable
        if profile.short_name is None:
            user.short_name = short
    if profile.short_name is not None and profile.short_name.strip():
        user.short_name = profile.short_name.strip()
    if profile.sortable_name is not None and profile.sortable_name.strip():
        user.sortable_name = profile.sortable_name.strip()
    if profile.email is not None:
        user.email = profile.email.strip() or None
    if profile.locale is not None:
        user.locale = profile.locale or None
    if profile.time_zone is not None:
        user.time_zone = profile.time_zone or None


def _check_password(password: str | None, problems: Invalid) -> None:
    if password is not None:
        problem = admin.password_problem(password)
        if problem is not None:
            problems.add(problems.pseudonym, "password", problem)


async def _check_unique_id(
    session: AsyncSession,
    account_id: int,
    unique_id: str,
    problems: Invalid,
    *,
    other_than: int | None = None,
) -> None:
    unique_id = unique_id.strip()
    if not unique_id:
        problems.add(problems.pseudonym, "unique_id", "too_short")
        return
    if len(unique_id) > MAX_NAME:
        problems.add(problems.pseudonym, "unique_id", "too_long")
        return
    same = select(Login.id).where(
        Login.account_id == account_id, Login.unique_id_normalized == unique_id.lower()
    )
    if other_than is not None:
        same = same.where(Login.id != other_than)
    if await session.scalar(same.limit(1)) is not None:
        problems.add(problems.pseudonym, "unique_id", "taken", TAKEN_LOGIN)


async def _check_sis_user_id(
    session: AsyncSession,
    account_id: int,
    sis_user_id: str,
    problems: Invalid,
    *,
    other_than: int | None = None,
) -> None:
    if len(sis_user_id) > MAX_NAME:
        problems.add(problems.pseudonym, "sis_user_id", "too_long")
        return
    same = select(Login.id).where(Login.account_id == account_id, Login.sis_user_id == sis_user_id)
    if other_than is not None:
        same = same.where(Login.id != other_than)
    if await session.scalar(same.limit(1)) is not None:
        message = f'SIS ID "{sis_user_id}" is already in use'
        problems.add(problems.pseudonym, "sis_user_id", "taken", message)


async def _flush_unique(session: AsyncSession, problems: Invalid) -> None:
    """Flush in a savepoint: a login or SIS id taken by a concurrent request between our
    check and this write is the same ``taken`` error, not a server error."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        problems.add(problems.pseudonym, "unique_id", "taken", TAKEN_LOGIN)
        raise problems from None


async def create_person(
    session: AsyncSession,
    *,
    unique_id: str,
    password: str | None,
    profile: Profile,
    sis_user_id: str | None = None,
    is_admin: bool = False,
) -> Person:
    """Canvas's ``POST /accounts/:id/users``: a user and their login. The name defaults to the
    login; the email to the login when it looks like one."""
    account = await admin.root_account(session)
    problems = Invalid()
    _check_profile(profile, problems)
    await _check_unique_id(session, account.id, unique_id, problems)
    if password is None or password == "":
        problems.add(problems.pseudonym, "password", "blank")
    _check_password(password or None, problems)
    sis_user_id = sis_user_id or None
    if sis_user_id is not None:
        await _check_sis_user_id(session, account.id, sis_user_id, problems)
    if problems.pseudonym:
        problems.add(problems.user, "pseudonyms", "invalid", "is invalid")
    if problems:
        raise problems
    assert password is not None
    unique_id = unique_id.strip()
    name = (profile.name or "").strip() or unique_id
    sortable, short = admin.derived_names(name)
    user = User(
        name=name,
        sortable_name=sortable,
        short_name=short,
        is_admin=is_admin,
        email=unique_id if "@" in unique_id else None,
    )
    _apply_profile(user, Profile(**{**profile.__dict__, "name": None}))
    session.add(user)
    await session.flush()
    login = Login(
        user_id=user.id,
        account_id=account.id,
        unique_id=unique_id,
        unique_id_normalized=unique_id.lower(),
        sis_user_id=sis_user_id,
        password_hash=await secrets.hash_password_in_worker(password),
    )
    session.add(login)
    await _flush_unique(session, problems)
    return Person(user, login)


async def update_profile(
    session: AsyncSession, person: Person, profile: Profile, *, is_admin: bool | None = None
) -> Person:
    """Change the user's fields (``PUT /users/:id``, the console, ``lmsauth user update``)."""
    problems = Invalid()
    _check_profile(profile, problems)
    if problems:
        raise problems
    _apply_profile(person.user, profile)
    if is_admin is not None:
        person.user.is_admin = is_admin
    await session.flush()
    return person


async def update_login(
    session: AsyncSession,
    login: Login,
    *,
    unique_id: str | None = None,
    password: str | None = None,
    sis_user_id: str | None = None,
    workflow_state: str | None = None,
) -> Login:
    """Canvas's ``PUT /accounts/:id/logins/:id``: a new login name, password or SIS id, and
    ``active``/``suspended`` through ``admin.suspend_logins``."""
    problems = Invalid()
    if unique_id is not None:
        await _check_unique_id(session, login.account_id, unique_id, problems, other_than=login.id)
    _check_password(password, problems)
    if sis_user_id:
        await _check_sis_user_id(session, login.account_id, sis_user_id, problems, other_than=login.id)
    if workflow_state is not None and workflow_state not in ("active", "suspended"):
        problems.add(problems.pseudonym, "workflow_state", "inclusion", "is not included in the list")
    if problems:
        raise problems
    if unique_id is not None:
        login.unique_id = unique_id.strip()
        login.unique_id_normalized = login.unique_id.lower()
    if password is not None:
        login.password_hash = await secrets.hash_password_in_worker(password)
    if sis_user_id is not None:
        login.sis_user_id = sis_user_id or None
    await _flush_unique(session, problems)
    if workflow_state is not None and workflow_state != login.workflow_state:
        user = await session.get(User, login.user_id)
        assert user is not None
        await admin.suspend_logins(session, user, workflow_state == "suspended", login.id)
        await session.refresh(login)
    return login


async def set_password(session: AsyncSession, person: Person, password: str) -> None:
    """A new password on the person's login (the console's "Reset password")."""
    if person.login is None:
        problems = Invalid()
        problems.add(problems.pseudonym, "unique_id", "blank")
        raise problems
    await update_login(session, person.login, password=password)


async def set_suspended(session: AsyncSession, person: Person, suspended: bool) -> None:
    await admin.suspend_logins(session, person.user, suspended)


async def delete_person(session: AsyncSession, person: Person) -> None:
    await admin.soft_delete_user(session, person.user)


def is_suspended(states: list[str]) -> bool:
    """A user whose logins are all suspended (``people.USER_IS_USABLE``'s other half)."""
    return bool(states) and all(state == "suspended" for state in states)


async def login_states(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.scalars(
        select(Login.workflow_state).where(Login.user_id == user_id, Login.workflow_state != "deleted")
    )
    return list(rows)
