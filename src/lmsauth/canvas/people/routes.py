"""The People routes: the Users and Logins APIs and the admin console's People pages.
``canvas.routes`` mounts them; ``GET /api/v1/users/:id`` stays there, on the hot path."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.people.pages import PeoplePages


def people_routes(api: CanvasApi) -> list[BaseRoute]:
    people = api.people
    pages = PeoplePages(api.ctx)
    users = "/api/v1/accounts/{account_id}/users"
    return [
        Route("/api/v1/users/{user_id}", api.protected(people.update_user), methods=["PUT"]),
        Route(users, api.protected(people.list_users), methods=["GET"]),
        Route(users, api.protected(people.create_user), methods=["POST"]),
        Route(users + "/{user_id}", api.protected(people.delete_user), methods=["DELETE"]),
        Route("/api/v1/accounts/{account_id}/logins", api.protected(people.account_logins), methods=["GET"]),
        Route(
            "/api/v1/accounts/{account_id}/logins/{login_id}",
            api.protected(people.update_login),
            methods=["PUT"],
        ),
        Route("/api/v1/users/{user_id}/logins", api.protected(people.user_logins), methods=["GET"]),
        Route("/accounts/self/users", pages.index, methods=["GET"]),
        Route("/accounts/self/users", pages.create, methods=["POST"]),
        Route("/accounts/self/users/new", pages.new, methods=["GET"]),
        Route("/accounts/self/users/{user_id}", pages.show, methods=["GET"]),
        Route("/accounts/self/users/{user_id}", pages.act, methods=["POST"]),
    ]
