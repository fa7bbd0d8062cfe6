"""``lmsauth user``: create, list, show, update, suspend, unsuspend and delete people.

Same conventions as the rest of the CLI: each ``--json`` prints one JSON object on stdout;
errors go to stderr with exit status 1. Suspension and deletion are the API's and the
console's (``people.users``): the person's tokens and browser sessions stop at once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import admin
from lmsauth.canvas.pagination import PageRequest
from lmsauth.canvas.people import users
from lmsauth.canvas.people.users import Invalid, Person, Profile, Search
from lmsauth.core.commands import run_in_transaction
from lmsauth.settings import Settings

T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
    async def guarded(session: AsyncSession, _settings: Settings) -> T:
        try:
            return await work(session)
        except Invalid as problems:
            raise admin.AdminError("; ".join(problems.messages())) from None

    return run_in_transaction(guarded, write=write, operator_errors=(admin.AdminError,))


async def _summary(session: AsyncSession, person: Person) -> dict[str, Any]:
    user, login = person.user, person.login
    states = await users.login_states(session, user.id)
    return {
        "id": user.id,
        "login": login.unique_id if login else None,
        "name": user.name,
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "email": user.email,
        "admin": user.is_admin,
        "state": "suspended" if users.is_suspended(states) else "active",
        "sis_user_id": login.sis_user_id if login else None,
        "locale": user.locale,
        "time_zone": user.time_zone,
        "created_at": users.iso(user.created_at),
        "updated_at": users.iso(user.updated_at),
    }


async def _person(session: AsyncSession, login: str) -> Person:
    user = await admin.user_of_login(session, login)
    return Person(user, await users.primary_login(session, user.id))


def _print(data: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if as_json else text)


@click.group("user")
def user() -> None:
    """Canvas users and their logins."""


@user.command("create")
@click.option("--login", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--admin", "is_admin", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def create(login: str, password: str, name: str, email: str | None, is_admin: bool, as_json: bool) -> None:
    """Create a user who signs in with LOGIN and PASSWORD."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        admin.check_password(password)
        found, created = await admin.upsert_user(
            session, login=login, password=password, name=name, admin=is_admin, email=email
        )
        if not created:
            raise admin.AdminError(f"a user with login {login} already exists")
        return {"id": found.id, "login": login, "name": found.name}

    data = _run(work)
    _print(data, as_json, f"created user {data['id']} ({login})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_users(as_json: bool) -> None:
    """Every person who is not deleted, by sortable name."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        people, _total = await users.list_people(session, Search(), PageRequest(1, 1_000_000))
        return [await _summary(session, person) for person in people]

    people = _run(work, write=False)
    if as_json:
        click.echo(json.dumps({"users": people}, sort_keys=True))
        return
    for person in people:
        click.echo(f"{person['id']}\t{person['state']}\t{person['login']}\t{person['name']}")


@user.command("show")
@click.argument("login")
@click.option("--json", "as_json", is_flag=True)
def show(login: str, as_json: bool) -> None:
    """The person who signs in with LOGIN."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        return await _summary(session, await _person(session, login))

    data = _run(work, write=False)
    _print(data, as_json, "\n".join(f"{name}: {value}" for name, value in sorted(data.items())))


@user.command("update")
@click.argument("login")
@click.option("--name", default=None)
@click.option("--password", default=None, help="A new password (8 characters at least).")
@click.option("--email", default=None)
@click.option("--admin/--no-admin", "is_admin", default=None)
@click.option("--json", "as_json", is_flag=True)
def update(
    login: str,
    name: str | None,
    password: str | None,
    email: str | None,
    is_admin: bool | None,
    as_json: bool,
) -> None:
    """Change the name, password, email or admin flag of the person with LOGIN."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        person = await _person(session, login)
        await users.update_profile(session, person, Profile(name=name, email=email), is_admin=is_admin)
        if password is not None:
            await users.set_password(session, person, password)
        return await _summary(session, person)

    data = _run(work)
    _print(data, as_json, f"updated user {data['id']} ({data['login']})")


def _set_suspended(login: str, suspended: bool) -> None:
    async def work(session: AsyncSession) -> None:
        await admin.set_user_suspended(session, login, suspended)

    _run(work)
    click.echo(f"user with login {login} is {'suspended' if suspended else 'active'}", err=True)


@user.command("suspend")
@click.argument("login")
def suspend(login: str) -> None:
    """Suspend every login of the user with LOGIN: sign-in, tokens and sessions stop working."""
    _set_suspended(login, True)


@user.command("unsuspend")
@click.argument("login")
def unsuspend(login: str) -> None:
    """Reactivate the user's suspended logins: their tokens work again."""
    _set_suspended(login, False)


@user.command("delete")
@click.argument("login")
def delete(login: str) -> None:
    """Delete the user with LOGIN (Canvas's soft delete): nothing of theirs works again."""

    async def work(session: AsyncSession) -> None:
        await admin.delete_user(session, login)

    _run(work)
    click.echo(f"user with login {login} is deleted", err=True)
