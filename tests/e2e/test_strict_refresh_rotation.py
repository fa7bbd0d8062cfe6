"""requests-oauthlib's automatic refresh against a strict-profile live server: the library
keeps each rotated refresh token it is given, so a long-lived session goes on refreshing, and
a copy of an old refresh token presented later revokes the whole grant."""

from __future__ import annotations

import oauthlib.oauth2.rfc6749.clients.base
import oauthlib.oauth2.rfc6749.parameters
import pytest
import requests
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests_oauthlib import OAuth2Session

from lmsauth.core import clock
from lmsauth.settings import Profile, Settings
from tests.conftest import Directory, LiveServer
from tests.e2e.conftest import CALLBACK, ScriptedBrowser, follow_server_clock

pytestmark = pytest.mark.usefixtures("insecure_transport")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The live server of this module runs the strict profile."""
    return settings.model_copy(update={"profile": Profile.strict})


def test_auto_refresh_keeps_the_rotated_refresh_token(
    live_server: LiveServer, directory: Directory, browser: ScriptedBrowser, monkeypatch
) -> None:
    follow_server_clock(monkeypatch, oauthlib.oauth2.rfc6749.clients.base, oauthlib.oauth2.rfc6749.parameters)
    saved: list[dict[str, object]] = []
    key = directory.key(redirect_uris=[CALLBACK])
    user = directory.user()
    token_url = f"{live_server.url}/login/oauth2/token"
    me_url = f"{live_server.url}/api/v1/users/self"
    oauth = OAuth2Session(
        key.client_id,
        redirect_uri=CALLBACK,
        pkce="S256",  # the strict profile refuses authorization requests without it
        auto_refresh_url=token_url,
        auto_refresh_kwargs={"client_id": key.client_id, "client_secret": key.client_secret},
        token_updater=saved.append,
    )
    url, _ = oauth.authorization_url(f"{live_server.url}/login/oauth2/auth")
    callback = browser.authorize(url, user.login, user.password)
    first = oauth.fetch_token(token_url, authorization_response=callback, client_secret=key.client_secret)
    assert oauth.get(me_url).status_code == 200

    # Each hour the library refreshes by itself and keeps the new refresh token it is given:
    # the second refresh presents the first one's answer, not the original token.
    for hour in (1, 2):
        clock.advance(3601)
        me = oauth.get(me_url)
        assert me.status_code == 200, me.text
        assert len(saved) == hour
        assert saved[-1]["refresh_token"] != (saved[-2] if hour > 1 else first)["refresh_token"]
        assert oauth.token["refresh_token"] == saved[-1]["refresh_token"]

    # A copy of the first refresh token (stolen, say) is refused, and the grant with it.
    with pytest.raises(OAuth2Error) as raised:
        oauth.refresh_token(
            token_url, refresh_token=first["refresh_token"], auth=(key.client_id, key.client_secret)
        )
    assert (raised.value.error, raised.value.description) == ("invalid_grant", "refresh_token not found")
    revoked = requests.get(
        me_url, headers={"Authorization": f"Bearer {saved[-1]['access_token']}"}, timeout=10
    )
    assert revoked.status_code == 401
