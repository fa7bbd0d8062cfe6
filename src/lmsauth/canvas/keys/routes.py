"""The developer-key routes that ``canvas.routes`` mounts: the API (behind Bearer tokens) and
the console pages."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.keys.api import DeveloperKeysApi
from lmsauth.canvas.keys.console import DeveloperKeysConsole

_API_KEYS = "/api/v1/accounts/{account_id}/developer_keys"
_API_KEY = "/api/v1/developer_keys/{developer_key_id}"
_BINDINGS = _API_KEYS + "/{developer_key_id}/developer_key_account_bindings"
_PAGES = "/accounts/{account_id}/developer_keys"


def developer_key_routes(ctx: CanvasContext, api: CanvasApi) -> list[BaseRoute]:
    keys = DeveloperKeysApi(ctx)
    console = DeveloperKeysConsole(ctx)
    return [
        Route(_API_KEYS, api.protected(keys.index), methods=["GET"]),
        Route(_API_KEYS, api.protected(keys.create), methods=["POST"]),
        Route(_API_KEY, api.protected(keys.update), methods=["PUT"]),
        Route(_API_KEY, api.protected(keys.destroy), methods=["DELETE"]),
        Route(_BINDINGS, api.protected(keys.bind), methods=["POST"]),
        Route(_PAGES, console.index, methods=["GET"]),
        Route(_PAGES, console.create, methods=["POST"]),
        Route(_PAGES + "/new", console.new, methods=["GET"]),
        Route(_PAGES + "/{developer_key_id}", console.show, methods=["GET"]),
        Route(_PAGES + "/{developer_key_id}", console.update, methods=["POST"]),
        Route(_PAGES + "/{developer_key_id}/binding", console.set_binding, methods=["POST"]),
        Route(_PAGES + "/{developer_key_id}/delete", console.delete, methods=["POST"]),
    ]
