"""authlib's ``OAuth2Session``, in both profiles, through every step a standard client takes:
a PKCE code flow with ``client_secret_basic``, an API call, a refresh, and RFC 7009
revocation at the advertised ``revocation_endpoint``, after which the grant is dead."""

from __future__ import annotations

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from lmsauth.settings import Profile, Settings
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser

pytestmark = pytest.mark.usefixtures("insecure_transport")


@pytest.fixture(params=[Profile.canvas, Profile.strict], ids=["canvas", "strict"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return settings.model_copy(update={"profile": request.param})


def test_code_flow_refresh_and_revocation(
    live_server: LiveServer, directory: Directory, browser: ScriptedBrowser
) -> None:
    strict = live_server.settings.profile is Profile.strict
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    metadata = browser.http.get(
        f"{live_server.url}/.well-known/oauth-authorization-server", timeout=10
    ).json()
    oauth = OAuth2Session(
        key.client_id,
        key.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        code_challenge_method="S256",
        redirect_uri=CALLBACK,
    )
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    callback = browser.authorize(url, user.login, user.password)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
    )
    me = f"{live_server.url}/api/v1/users/self"
    assert oauth.get(me).json()["id"] == user.id

    refreshed = oauth.refresh_token(metadata["token_endpoint"])
    assert (refreshed["refresh_token"] != token["refresh_token"]) is strict  # strict rotates
    assert oauth.get(me).status_code == 200

    revoked = oauth.revoke_token(
        metadata["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    assert oauth.get(me).status_code == 401
    with pytest.raises(OAuthError) as raised:
        oauth.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert raised.value.error == ("invalid_grant" if strict else "invalid_request")
