"""Canvas's side: ``GET /api/lti/accounts/self/jwt_token`` and the signed-in launch page."""

from __future__ import annotations

import jwt as pyjwt

from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.canvas.tools import find_tool, standard_url
from lmsauth.core import clock
from tests.commons.support import (
    CONSUMER_KEY,
    SHARED_SECRET,
    Lti,
    accept_terms,
    form_fields,
    launch_and_accept,
)
from tests.flows import log_in

NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}


def _jwt(client, token: str | None, **params: str):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/api/lti/accounts/self/jwt_token", params=params, headers=headers)


def test_jwt_carries_the_launch_for_the_tokens_user(client, lti: Lti) -> None:
    token = lti.access_token(client)
    response = _jwt(client, token, tool_launch_url=lti.launch_url)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # a credential: no cache keeps it
    assert set(response.json()) == {"jwt_token"}
    encoded = response.json()["jwt_token"]
    assert pyjwt.get_unverified_header(encoded)["alg"] == "HS256"
    claims = pyjwt.decode(encoded, SHARED_SECRET, algorithms=["HS256"])
    assert claims["consumer_key"] == CONSUMER_KEY
    assert abs(claims["iat"] - clock.timestamp()) <= 2
    assert "exp" not in claims
    assert not [name for name in claims if name.startswith("oauth_")]
    assert claims["lti_message_type"] == "basic-lti-launch-request"
    assert claims["lti_version"] == "LTI-1p0"
    assert claims["custom_canvas_user_id"] == str(lti.user.id)
    assert claims["custom_canvas_api_domain"] == "testserver"
    assert claims["custom_canvas_user_login_id"] == lti.user.login
    assert claims["lis_person_name_full"] == lti.user.name
    assert claims["launch_presentation_locale"] == "fr"
    assert claims["user_image"] == "https://avatars.example/sam.png"
    assert claims["tool_consumer_instance_guid"].endswith(":canvas-lms")
    assert all(isinstance(value, str) for name, value in claims.items() if name != "iat")


def test_two_tokens_in_one_second_each_open_a_session(client, lti: Lti) -> None:
    """Commons lets one JWT open one session; Canvas's claims alone would make two tokens for one
    user in one second the same bytes, so the second would be refused as a replay."""
    launch_and_accept(client, lti)
    token = lti.access_token(client)
    clock.freeze()  # both tokens carry the same iat
    first, second = (_jwt(client, token, tool_launch_url=lti.launch_url).json()["jwt_token"] for _ in "12")
    assert first != second
    for encoded in (first, second):
        assert pyjwt.decode(encoded, SHARED_SECRET, algorithms=["HS256"])["iat"] == clock.timestamp()
        client.cookies.clear()
        created = client.post("/commons/api/sessions", json={"jwt_token": encoded})
        assert created.status_code == 201, created.text


def test_jwt_needs_a_bearer_token(client, lti: Lti) -> None:
    response = _jwt(client, None, tool_launch_url=lti.launch_url)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="canvas-lms"'
    assert _jwt(client, "not-a-token", tool_launch_url=lti.launch_url).json() == {
        "errors": [{"message": "Invalid access token."}]
    }


def test_unknown_tool_is_404_in_canvas_shape(client, lti: Lti) -> None:
    token = lti.access_token(client)
    for params in ({"tool_launch_url": "https://no-such-tool.example/launch"}, {"tool_id": "999"}, {}):
        response = _jwt(client, token, **params)
        assert response.status_code == 404, params
        assert response.json() == NOT_FOUND


def test_other_accounts_are_404(client, lti: Lti) -> None:
    token = lti.access_token(client)
    response = client.get(
        "/api/lti/accounts/424242/jwt_token",
        params={"tool_launch_url": lti.launch_url},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404


def test_tool_found_by_id_and_by_normalised_url(client, lti: Lti) -> None:
    token = lti.access_token(client)
    assert _jwt(client, token, tool_id=str(lti.tool_id)).status_code == 200
    assert _jwt(client, token, tool_launch_url="HTTP://TestServer:80/commons/api/lti/").status_code == 200


def test_find_tool_prefers_exact_url_then_domain() -> None:
    exact = ExternalTool(id=1, url="https://lor.example/api/lti", domain=None)
    by_domain = ExternalTool(id=2, url="https://other.example/launch", domain="lor.example")
    assert find_tool([by_domain, exact], "https://lor.example/api/lti", None) is exact
    assert find_tool([by_domain, exact], "https://eu.lor.example/api/lti", None) is by_domain
    assert find_tool([by_domain, exact], "https://notlor.example/api/lti", None) is None
    assert standard_url("https://A.example:443/x/?b=2&a=1") == "https://a.example/x?a=1&b=2"


def test_canvas_launch_page_posts_a_launch_commons_accepts(client, lti: Lti) -> None:
    """The launch form Canvas renders is signed so that Commons verifies it, end to end."""
    assert client.get(f"/accounts/self/external_tools/{lti.tool_id}").status_code == 302  # not signed in
    assert log_in(client, lti.user.login, lti.user.password).status_code == 302
    listing = client.get("/accounts/self/external_tools")
    assert f'href="/accounts/self/external_tools/{lti.tool_id}"' in listing.text
    page = client.get(f"/accounts/self/external_tools/{lti.tool_id}")
    assert page.status_code == 200
    assert f'action="{lti.launch_url}"' in page.text and 'id="launch"' in page.text
    fields = form_fields(page.text)
    names = [name for name, _ in fields]
    assert {"oauth_signature", "oauth_nonce", "oauth_timestamp", "oauth_consumer_key"} <= set(names)
    assert dict(fields)["oauth_signature_method"] == "HMAC-SHA1"
    launched = client.post("/commons/api/lti", data=dict(fields))
    assert launched.status_code == 303, launched.text
    accept_terms(client, lti)
    # Posting the same form again is a replayed nonce.
    assert client.post("/commons/api/lti", data=dict(fields)).status_code == 401


def test_launch_page_for_unknown_tool_is_404(client, lti: Lti) -> None:
    assert log_in(client, lti.user.login, lti.user.password).status_code == 302
    assert client.get("/accounts/self/external_tools/9999").status_code == 404
    assert client.get("/accounts/77/external_tools").status_code == 404
