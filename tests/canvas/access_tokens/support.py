"""What the access-token tests share: manual tokens made straight in the database, the
API's paths, and row counts for "changes nothing"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from lmsauth.canvas.access_tokens import manual
from lmsauth.canvas.models import AccessToken, DeveloperKey
from tests.conftest import Directory, Person

UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
INVALID_TOKEN = {"errors": [{"message": "Invalid access token."}]}


def manual_token(directory: Directory, person: Person, purpose: str = "Grading script", **extra: Any) -> str:
    """A manual token of ``person``, made as the API makes it; its text."""

    async def work(session: Any) -> str:
        made = await manual.create(
            session,
            user_id=person.id,
            purpose=purpose,
            expires_at=extra.get("expires_at"),
            scopes=extra.get("scopes", []),
        )
        return made.token

    result: str = _run(directory, work)
    return result


def _run(directory: Directory, work: Any) -> Any:
    from tests.conftest import run

    return run(directory._in_session(work))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_rows(directory: Directory) -> list[tuple[Any, ...]]:
    """Every token row's state, to assert that a refused request changed nothing."""
    rows = directory.query(
        select(
            AccessToken.id,
            AccessToken.token_digest,
            AccessToken.workflow_state,
            AccessToken.purpose,
            AccessToken.permanent_expires_at,
            AccessToken.scopes,
        ).order_by(AccessToken.id)
    )
    return [tuple(row) for row in rows]


def token_count(directory: Directory) -> int:
    return int(directory.query(select(func.count()).select_from(AccessToken))[0][0])


def scope_default_key(directory: Directory, scopes: list[str]) -> None:
    """Make the default key enforce ``scopes`` (it is made first if missing)."""

    async def work(session: Any) -> None:
        key = await manual.default_key(session)
        await session.execute(
            update(DeveloperKey).where(DeveloperKey.id == key.id).values(require_scopes=True, scopes=scopes)
        )

    _run(directory, work)


def execute(directory: Directory, statement: Any) -> None:
    """Run a statement that returns no rows (an UPDATE) in the test's database."""

    async def work(session: Any) -> None:
        await session.execute(statement)

    _run(directory, work)
