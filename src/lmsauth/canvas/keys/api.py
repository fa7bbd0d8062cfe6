"""Canvas's Developer Keys API (spec 11.1) and the account binding (spec 2.2), for account
admins, behind ``CanvasApi.protected``:

- ``GET``/``POST /api/v1/accounts/:account_id/developer_keys`` (``?inherited=true`` lists the
  visible global keys instead of the account's own);
- ``PUT``/``DELETE /api/v1/developer_keys/:id`` (``developer_key[event]`` is ``activate`` or
  ``deactivate``);
- an LTI key (spec lti13.md 1.1) is one made or changed with ``developer_key[tool_configuration]``,
  Canvas's tool configuration as a JSON text (its OIDC initiation URL, target link URI,
  scopes, placements, custom fields, privacy level, public JWK or JWK set URL);
- ``POST /api/v1/accounts/:account_id/developer_keys/:developer_key_id/developer_key_account_bindings``
  with ``developer_key_account_binding[workflow_state]`` ``on``, ``off`` or ``allow``.

A field that fails the model's validation is answered as Canvas renders ``@key.errors``: 400
``{"errors": {"<attribute>": [{"attribute", "type", "message"}]}}``; nothing is written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas import accounts
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.bearer import Bearer
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import bad_request, not_found, unauthorized
from lmsauth.canvas.keys import lti, service
from lmsauth.canvas.keys.service import KeyInvalid
from lmsauth.canvas.models import Account, DeveloperKey
from lmsauth.canvas.pagination import page_request, paginate
from lmsauth.core.errors import WireError
from lmsauth.core.web import ORJSONResponse, Params

TEXT_FIELDS = (
    "name",
    "email",
    "icon_url",
    "notes",
    "vendor_code",
    "redirect_uri",
    "client_credentials_audience",
)
FLAG_FIELDS = ("visible", "require_scopes", "auto_expire_tokens")
LIST_FIELDS = ("redirect_uris", "scopes")
EVENTS = {"activate": "active", "deactivate": "inactive"}
# ActiveModel's false values; any other non-blank value is true, a blank one is nil.
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "off", "OFF"})


def rails_boolean(value: str) -> bool | None:
    """How Rails casts a form value into a boolean column."""
    if value == "":
        return None
    return value not in _FALSE


def key_changes(params: Params) -> dict[str, Any]:
    """The ``developer_key[...]`` fields given. A list field is ``field[]`` values, or one
    string split on whitespace as Canvas's setter splits ``redirect_uris``."""
    changes: dict[str, Any] = {}
    for field in TEXT_FIELDS:
        value = params.get(f"developer_key[{field}]")
        if value is not None:
            changes[field] = value
    for field in FLAG_FIELDS:
        raw = params.get(f"developer_key[{field}]")
        flag = rails_boolean(raw) if raw is not None else None
        if flag is not None:
            changes[field] = flag
    for field in LIST_FIELDS:
        items = params.get_all(f"developer_key[{field}][]")
        single = params.get(f"developer_key[{field}]")
        if items or single is not None:
            changes[field] = [item for item in items if item] + (single or "").split()
    return changes


def lti_configuration(params: Params) -> dict[str, Any] | None:
    """``developer_key[tool_configuration]``, checked; None when not given."""
    raw = params.get("developer_key[tool_configuration]")
    if raw is None:
        return None
    try:
        return lti.parse_tool_configuration(raw)
    except AdminError as exc:
        raise invalid(KeyInvalid("tool_configuration", str(exc))) from None


def invalid(exc: KeyInvalid) -> WireError:
    """Canvas's ``render json: @key.errors, status: :bad_request``."""
    error = {"attribute": exc.attribute, "type": exc.kind, "message": exc.message}
    return WireError(400, {"errors": {exc.attribute: [error]}})


def require_admin(bearer: Bearer) -> None:
    """``manage_developer_keys``: this server's account admins."""
    if not bearer.user.is_admin:
        raise unauthorized()


class DeveloperKeysApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def _account(self, session: AsyncSession, request: Request) -> Account:
        account = await accounts.find_account(session, request.path_params["account_id"])
        if account is None:
            raise not_found()
        return account

    async def _own_key(self, session: AsyncSession, raw_id: str) -> DeveloperKey:
        """A key the admin may change: the root account's. A global (Site Admin) key needs
        ``modify_site_admin_developer_keys``, which no account admin has."""
        key = await service.find_key(session, raw_id)
        if key is None:
            raise not_found()
        if key.account_id is None:
            raise unauthorized()
        return key

    async def key_json(self, session: AsyncSession, key: DeveloperKey, account: Account) -> dict[str, Any]:
        use = await service.token_use(session, [key.id])
        return self._json(key, account, use.get(key.id, service.TokenUse()))

    def _json(self, key: DeveloperKey, account: Account, use: service.TokenUse) -> dict[str, Any]:
        secret = service.api_key(key, self.ctx.settings.resolved_secret_key)
        return service.developer_key_json(key, account, use, secret)

    async def index(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/accounts/:account_id/developer_keys, paginated, newest first."""
        asked = page_request(params)
        inherited = rails_boolean(params.get("inherited") or "") is True
        async with self.ctx.db.session() as session:
            account = await self._account(session, request)
            require_admin(bearer)
            rows, total = await service.account_keys(
                session, account, offset=asked.offset, limit=asked.per_page, inherited=inherited
            )
            use = await service.token_use(session, [row.id for row in rows])
            body = [self._json(row, account, use.get(row.id, service.TokenUse())) for row in rows]
        return paginate(ORJSONResponse(body), request, self.ctx.settings.public_url, asked, total)

    async def create(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST /api/v1/accounts/:account_id/developer_keys: a new key, its binding ``off``."""
        changes = key_changes(params)
        async with self.ctx.db.session(write=True) as session:
            account = await self._account(session, request)
            require_admin(bearer)
            config = lti_configuration(params)
            try:
                key = await service.create_key(
                    session, changes, secret_key=self.ctx.settings.resolved_secret_key, user_id=bearer.user.id
                )
            except KeyInvalid as exc:
                raise invalid(exc) from None
            if config is not None:
                lti.apply_configuration(key, config, scopes_given="scopes" in changes)
                await session.flush()
            body = await self.key_json(session, key, account)
        return ORJSONResponse(body)

    async def update(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """PUT /api/v1/developer_keys/:id: the event first, then the fields (spec 11.1)."""
        require_admin(bearer)
        changes = key_changes(params)
        event = params.get("developer_key[event]")
        if event is not None and event not in EVENTS:
            raise bad_request("developer_key[event] must be activate or deactivate")
        async with self.ctx.db.session(write=True) as session:
            key = await self._own_key(session, request.path_params["developer_key_id"])
            if event is not None:
                key.workflow_state = EVENTS[event]
            config = lti_configuration(params)
            if config is not None and "scopes" not in changes:
                changes["scopes"] = list(config.get("scopes", []))
            try:
                await service.change_key(session, key, changes, drop_unknown_scopes=True)
            except KeyInvalid as exc:
                raise invalid(exc) from None
            if config is not None:
                lti.apply_configuration(key, config, scopes_given=True)
                await session.flush()
            account = await self._account_of(session, key)
            body = await self.key_json(session, key, account)
        return ORJSONResponse(body)

    async def destroy(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """DELETE /api/v1/developer_keys/:id: Canvas's soft delete; the key's JSON."""
        require_admin(bearer)
        async with self.ctx.db.session(write=True) as session:
            key = await self._own_key(session, request.path_params["developer_key_id"])
            await service.delete_key(session, key)
            account = await self._account_of(session, key)
            body = await self.key_json(session, key, account)
        return ORJSONResponse(body)

    async def bind(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """POST .../developer_key_account_bindings: turn the key on, off or "allow" for the
        account (Canvas's default state is ``off``)."""
        state = params.get("developer_key_account_binding[workflow_state]") or "off"
        async with self.ctx.db.session(write=True) as session:
            account = await self._account(session, request)
            require_admin(bearer)
            key = await service.find_key(session, request.path_params["developer_key_id"])
            if key is None or not (key.account_id == account.id or (key.account_id is None and key.visible)):
                raise not_found()
            try:
                await service.set_binding(session, key, state)
            except KeyInvalid as exc:
                raise invalid(exc) from None
            body = service.binding_json(key, account)
        return ORJSONResponse(body)

    @staticmethod
    async def _account_of(session: AsyncSession, key: DeveloperKey) -> Account:
        account = await session.get(Account, key.account_id) if key.account_id is not None else None
        if account is None:
            raise not_found()
        return account
