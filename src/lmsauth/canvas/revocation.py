"""RFC 7009 token revocation: ``POST /login/oauth2/revoke``.

Canvas has no such endpoint (its clients call ``DELETE /login/oauth2/token`` with the token
itself, which stays as it is); standard OAuth clients (authlib's ``revoke_token``,
openid-client's ``tokenRevocation``) post ``token`` and ``token_type_hint`` with their client
credentials, and without this endpoint their "revoke" left the token alive.

The client authenticates as at the token endpoint, with the same rate limits (a public
client by its id alone, RFC 7009 section 2.1: it spends no budget, as it proved nothing).
Either token of a grant revokes the grant's row (its access and refresh token together, as
``DELETE`` does); in the strict profile the whole family. An unknown token, one already
revoked, or one issued to another client is answered 200 and left alone (section 2.2): the
answer never tells a client whether another client's token exists.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas import tokens
from lmsauth.canvas.client_auth import ClientGate, authenticate_client, client_credentials
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import oauth_error
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.web import read_params

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_TOKEN_LENGTH = 256


class TokenRevocation:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def revoke(self, request: Request) -> Response:
        try:
            return await self._revoke(request)
        except WireError as exc:
            return exc.response()

    async def _revoke(self, request: Request) -> Response:
        try:
            params = await read_params(request)
            credentials = client_credentials(request, params)
            presented = params.get("token")
            hint = params.get("token_type_hint")
        except BadParameters as exc:
            raise oauth_error("invalid_request", exc.message) from exc
        gate = ClientGate(self.ctx.limits, request, credentials)
        gate.check_address()
        async with self.ctx.db.session(write=True) as session:
            key, _ = await authenticate_client(
                session, credentials, gate, public_allowed=True, strict=self.ctx.strict
            )
            if not presented:
                raise oauth_error("invalid_request", "You must provide the token parameter")
            if len(presented) <= MAX_TOKEN_LENGTH:
                row = await tokens.find_any(session, presented, refresh_first=hint == "refresh_token")
                # Strict: a used refresh token still names its family, which may live on.
                live = row is not None and (row.workflow_state == "active" or self.ctx.strict)
                if row is not None and live and row.developer_key_id == key.id:
                    await tokens.revoke_grant(session, row, whole_family=self.ctx.strict)
        return Response(status_code=200, headers=NO_STORE)
