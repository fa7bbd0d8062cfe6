"""``POST /api/lti`` (LTI 1.1 launch into Commons) and the terms of service page."""

from __future__ import annotations

from sqlalchemy import select

from lmsauth.commons.models import CommonsUser
from lmsauth.core import clock
from tests.commons.support import FORM, Lti, accept_terms, launch_and_accept


def _launch(client, lti: Lti, body: str):
    return client.post("/commons/api/lti", content=body, headers=FORM)


def test_launch_records_user_signs_in_and_shows_terms_until_accepted(client, lti: Lti) -> None:
    response = _launch(client, lti, lti.signed())
    assert response.status_code == 303
    assert response.headers["location"] == "/commons/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/commons" in cookie and "Secure" not in cookie
    (user,) = lti.directory.query(select(CommonsUser))
    row = user[0]
    assert (row.canvas_user_id, row.canvas_api_domain) == (str(lti.user.id), "testserver")
    assert (row.full_name, row.locale, row.avatar_url) == (
        lti.user.name,
        "fr",
        "https://avatars.example/sam.png",
    )
    assert row.public_id == "opaque-user-1:guid-1:canvas-lms"
    assert row.terms_accepted_at is None and row.first_launch_at is not None
    # The terms page stays until the form is sent, even on a second visit.
    assert client.get("/commons/").headers["location"] == "/commons/terms"
    assert client.get("/commons/").headers["location"] == "/commons/terms"
    accept_terms(client, lti)
    home = client.get("/commons/")
    assert home.status_code == 200
    assert f"Welcome to Commons, {lti.user.name}" in home.text
    assert "Test University" in home.text


def test_terms_form_needs_its_csrf_token(client, lti: Lti) -> None:
    assert _launch(client, lti, lti.signed()).status_code == 303
    assert client.post("/commons/terms", data={"accept": "yes"}).status_code == 422
    assert client.post("/commons/terms", data={"accept": "yes", "csrf_token": "forged"}).status_code == 422
    assert client.get("/commons/").headers["location"] == "/commons/terms"


def test_terms_form_needs_the_box_ticked(client, lti: Lti) -> None:
    assert _launch(client, lti, lti.signed()).status_code == 303
    page = client.get("/commons/terms")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/commons/terms", data={"csrf_token": token}).status_code == 400
    assert client.get("/commons/").headers["location"] == "/commons/terms"


def test_pages_without_a_session_ask_for_a_launch(client, lti: Lti) -> None:
    for path in ("/commons/", "/commons/terms"):
        response = client.get(path)
        assert response.status_code == 401
        assert "Launch Commons again from Canvas" in response.text
    assert client.post("/commons/terms", data={"csrf_token": "x", "accept": "yes"}).status_code == 401


def test_second_launch_keeps_accepted_terms(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    client.cookies.clear()
    again = _launch(client, lti, lti.signed())
    assert again.status_code == 303
    assert client.get("/commons/").status_code == 200


def test_bad_signature_is_refused(client, lti: Lti) -> None:
    response = _launch(client, lti, lti.signed(secret="not-the-shared-secret-0000"))
    assert response.status_code == 401
    assert "consumer key or OAuth signature is not valid" in response.text
    assert "set-cookie" not in response.headers
    assert lti.directory.query(select(CommonsUser)) == []


def test_tampered_parameter_is_refused(client, lti: Lti) -> None:
    body = lti.signed().replace("opaque-user-1", "opaque-user-2")
    assert _launch(client, lti, body).status_code == 401


def test_launch_signed_for_another_url_is_refused(client, lti: Lti) -> None:
    assert _launch(client, lti, lti.signed(url="http://elsewhere.example/api/lti")).status_code == 401


def test_unknown_consumer_key_is_refused_as_a_bad_signature_is(client, lti: Lti) -> None:
    """The answer does not tell a caller whether the consumer key exists."""
    unknown = _launch(client, lti, lti.signed(key="nobody-issued-this-key"))
    bad_signature = _launch(client, lti, lti.signed(secret="not-the-shared-secret-0000"))
    assert unknown.status_code == bad_signature.status_code == 401
    assert unknown.content == bad_signature.content
    assert unknown.headers["content-type"] == bad_signature.headers["content-type"]


def test_old_timestamp_is_refused(client, lti: Lti) -> None:
    response = _launch(client, lti, lti.signed(timestamp=clock.timestamp() - 301))
    assert response.status_code == 401
    assert "outside the 300-second window" in response.text
    assert _launch(client, lti, lti.signed(timestamp=clock.timestamp() - 290)).status_code == 303


def test_future_timestamp_is_refused(client, lti: Lti) -> None:
    assert _launch(client, lti, lti.signed(timestamp=clock.timestamp() + 120)).status_code == 401


def test_timestamp_window_follows_the_server_clock(client, lti: Lti) -> None:
    body = lti.signed()
    clock.advance(301)
    assert _launch(client, lti, body).status_code == 401


def test_nonce_is_never_accepted_twice(client, lti: Lti) -> None:
    body = lti.signed(nonce="the-same-nonce")
    assert _launch(client, lti, body).status_code == 303
    replay = _launch(client, lti, body)
    assert replay.status_code == 401
    assert "already used" in replay.text
    # A fresh request with the same nonce and a new signature is a replay too.
    assert _launch(client, lti, lti.signed(nonce="the-same-nonce")).status_code == 401


def test_launch_without_canvas_user_id_asks_for_public_privacy(client, lti: Lti) -> None:
    body = lti.signed(lti.launch_form(custom_canvas_user_id=None, custom_canvas_api_domain=None))
    response = _launch(client, lti, body)
    assert response.status_code == 400
    assert "privacy level to public" in response.text


def test_other_message_types_are_refused(client, lti: Lti) -> None:
    body = lti.signed(lti.launch_form(lti_message_type="ContentItemSelectionRequest"))
    assert _launch(client, lti, body).status_code == 400


def test_unsigned_form_is_refused(client, lti: Lti) -> None:
    response = _launch(client, lti, "lti_message_type=basic-lti-launch-request")
    assert response.status_code == 400
    assert "not a signed LTI launch" in response.text


def test_launch_must_be_a_form(client, lti: Lti) -> None:
    response = client.post("/commons/api/lti", json={"lti_message_type": "basic-lti-launch-request"})
    assert response.status_code == 400
