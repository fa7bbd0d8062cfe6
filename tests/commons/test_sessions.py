"""``/api/sessions``: create from a Canvas JWT, read, log out; every refusal has its own test."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import jwt as pyjwt
from sqlalchemy import select

from lmsauth.commons.models import CommonsSession, UsedJwt
from lmsauth.core import clock, secrets
from tests.commons.support import SESSION_FIELDS, SHARED_SECRET, Lti, launch_and_accept

EXPIRES = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _create(client, token: str):
    client.cookies.clear()
    return client.post("/commons/api/sessions", json={"jwt_token": token})


def _error(response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind, body
    message: str = body["error"]["message"]
    assert message
    return message


def test_create_returns_the_session_object_and_a_cookie(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    response = _create(client, lti.jwt())
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"  # the session id is a credential
    body = response.json()
    assert set(body) == SESSION_FIELDS | {"sessionId"}
    assert body["sid"] == body["sessionId"]
    assert body["canvasUserId"] == str(lti.user.id)
    assert body["canvasApiDomain"] == "testserver"
    assert body["userFullName"] == lti.user.name
    assert body["locale"] == "fr"
    assert body["accountName"] == "Test University"
    assert body["stateStandard"] == "CA" and body["showStateStandards"] is True
    assert body["roles"] == ["urn:lti:sysrole:ims/lis/User"] and body["isAdmin"] is False
    assert body["isAccountCurator"] is False
    assert EXPIRES.match(body["expires"])
    expires = datetime.strptime(body["expires"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((expires - clock.now()).total_seconds() - 12 * 3600) < 5
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"session={body['sessionId']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    # Only the digest is stored.
    (row,) = lti.directory.query(
        select(CommonsSession.token_digest, CommonsSession.origin).where(CommonsSession.origin == "api")
    )
    assert row.token_digest == secrets.digest(body["sessionId"])


def test_wrong_signature_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    message = _error(
        _create(client, lti.jwt(secret="another-secret-entirely-0123456789abcdef")), 401, "invalid_jwt"
    )
    assert "signature" in message


def test_unknown_consumer_key_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(consumer_key="nobody-issued-this")), 401, "unknown_consumer")


def test_missing_consumer_key_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(consumer_key=None)), 401, "invalid_jwt")


def test_old_iat_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    token = lti.jwt()
    clock.advance(301)
    message = _error(_create(client, token), 401, "jwt_expired")
    assert "300 seconds" in message
    assert _create(client, lti.jwt()).status_code == 201


def test_iat_window_is_configurable(client, lti: Lti, monkeypatch) -> None:
    monkeypatch.setenv("LMSAUTH_COMMONS_JWT_MAX_AGE_SECONDS", "60")
    from starlette.testclient import TestClient

    from lmsauth.app import create_app

    with TestClient(create_app(lti.settings), base_url="http://testserver", follow_redirects=False) as other:
        launch_and_accept(other, lti)
        _error(_create(other, lti.jwt(iat=clock.timestamp() - 61)), 401, "jwt_expired")
        assert _create(other, lti.jwt(iat=clock.timestamp() - 50)).status_code == 201


def test_iat_in_the_future_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(iat=clock.timestamp() + 120)), 401, "jwt_not_yet_valid")


def test_missing_iat_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(iat="yesterday")), 401, "invalid_jwt")


def test_same_jwt_twice_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    token = lti.jwt()
    assert _create(client, token).status_code == 201
    _error(_create(client, token), 401, "jwt_replayed")
    assert len(lti.directory.query(select(UsedJwt.digest))) == 1


def test_user_who_never_launched_is_refused(client, lti: Lti) -> None:
    message = _error(_create(client, lti.jwt()), 403, "never_launched")
    assert "never launched into Commons before" in message


def test_user_of_another_canvas_never_launched(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(custom_canvas_api_domain="other.canvas.example")), 403, "never_launched")


def test_user_who_has_not_accepted_terms_is_refused(client, lti: Lti) -> None:
    assert (
        client.post(
            "/commons/api/lti",
            content=lti.signed(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code
        == 303
    )
    token = lti.jwt()
    message = _error(_create(client, token), 403, "terms_not_accepted")
    assert "terms" in message
    # A refused JWT was not spent: once the terms are accepted the same JWT works.
    assert lti.directory.query(select(UsedJwt.digest)) == []


def test_jwt_without_canvas_user_is_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, lti.jwt(custom_canvas_user_id=None)), 401, "invalid_jwt")


def test_malformed_and_unsigned_jwts_are_refused(client, lti: Lti) -> None:
    launch_and_accept(client, lti)
    _error(_create(client, "not.a.jwt"), 401, "invalid_jwt")
    unsigned = pyjwt.encode(
        {"consumer_key": "test-commons-key", "iat": clock.timestamp()}, None, algorithm="none"
    )
    _error(_create(client, unsigned), 401, "invalid_jwt")


def test_body_must_carry_jwt_token(client, lti: Lti) -> None:
    _error(client.post("/commons/api/sessions", json={}), 400, "bad_request")
    _error(
        client.post("/commons/api/sessions", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    _error(
        client.post("/commons/api/sessions", content=b"x", headers={"Content-Type": "text/plain"}),
        400,
        "bad_request",
    )


def _session(client, lti: Lti) -> str:
    launch_and_accept(client, lti)
    response = _create(client, lti.jwt())
    assert response.status_code == 201
    client.cookies.clear()
    sid: str = response.json()["sessionId"]
    return sid


def test_read_needs_a_session(client, lti: Lti) -> None:
    _error(client.get("/commons/api/sessions/anything"), 401, "invalid_session")
    _error(client.get("/commons/api/sessions/x", headers={"X-Session-ID": "made-up"}), 401, "invalid_session")


def test_read_only_the_callers_own_session(client, lti: Lti) -> None:
    sid = _session(client, lti)
    # A different iat makes a different JWT (the same second would make the same one).
    other = _create(client, lti.jwt(iat=clock.timestamp() - 10)).json()["sessionId"]
    client.cookies.clear()
    response = client.get(f"/commons/api/sessions/{other}", headers={"X-Session-ID": sid})
    _error(response, 403, "forbidden")
    assert client.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 200


def test_session_id_precedence_when_places_disagree(client, lti: Lti) -> None:
    """Header, then ``session-id``, then ``state``, then body ``sessionId``, then the cookie."""
    sid = _session(client, lti)
    dead = "logged-out-or-never-issued"
    path = f"/commons/api/sessions/{sid}"

    def read(**places: str) -> int:
        client.cookies.clear()
        if "cookie" in places:
            client.cookies.set("session", places["cookie"], domain="testserver.local", path="/commons")
        params = {k: v for k, v in (("session-id", places.get("query")), ("state", places.get("state"))) if v}
        headers = {"X-Session-ID": places["header"]} if "header" in places else {}
        body = {"sessionId": places["body"]} if "body" in places else None
        return client.request("GET", path, params=params, headers=headers, json=body).status_code

    order = ["header", "query", "state", "body", "cookie"]
    for rank, place in enumerate(order):
        # The valid id in this place wins over dead ids in every later place ...
        later = {p: dead for p in order[rank + 1 :]}
        assert read(**later, **{place: sid}) == 200, place
        # ... and loses to a dead id in any earlier place.
        for earlier in order[:rank]:
            assert read(**{earlier: dead, place: sid}) == 401, (earlier, place)
    # Only the first state value counts.
    client.cookies.clear()
    assert client.get(f"{path}?state={sid}&state={dead}").status_code == 200
    assert client.get(f"{path}?state={dead}&state={sid}").status_code == 401


def test_each_place_alone_presents_the_session(client, lti: Lti) -> None:
    sid = _session(client, lti)
    path = f"/commons/api/sessions/{sid}"
    assert client.get(path, headers={"x-session-id": sid}).json()["sid"] == sid
    assert client.get(path, params={"session-id": sid}).json()["sid"] == sid
    assert client.get(path, params={"state": sid}).json()["sid"] == sid
    assert client.request("GET", path, json={"sessionId": sid}).json()["sid"] == sid
    form = client.request(
        "GET", path, content=f"sessionId={sid}", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.json()["sid"] == sid
    client.cookies.set("session", sid, domain="testserver.local", path="/commons")
    assert client.get(path).json()["sid"] == sid


def test_logout_ends_the_session_everywhere_and_clears_the_cookie(client, lti: Lti) -> None:
    sid = _session(client, lti)
    response = client.get("/commons/api/sessions/logout", headers={"X-Session-ID": sid})
    assert response.status_code == 204
    assert response.content == b""
    cookie = response.headers["set-cookie"]
    assert cookie.startswith('session="";') and "Max-Age=0" in cookie
    for place in (
        {"headers": {"X-Session-ID": sid}},
        {"params": {"session-id": sid}},
        {"params": {"state": sid}},
    ):
        client.cookies.clear()
        _error(client.get(f"/commons/api/sessions/{sid}", **place), 401, "invalid_session")
        _error(client.get("/commons/api/sessions/logout", **place), 401, "invalid_session")
    assert (
        lti.directory.query(
            select(CommonsSession.id).where(CommonsSession.token_digest == secrets.digest(sid))
        )
        == []
    )


def test_expired_session_is_refused_everywhere(client, lti: Lti) -> None:
    sid = _session(client, lti)
    clock.advance(12 * 3600 - 5)
    assert client.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 200
    clock.advance(10)
    _error(client.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid}), 401, "invalid_session")
    _error(client.get("/commons/api/sessions/logout", headers={"X-Session-ID": sid}), 401, "invalid_session")


def test_unknown_api_path_answers_in_commons_format(client, lti: Lti) -> None:
    _error(client.get("/commons/api/nothing-here"), 404, "not_found")


def test_cookies_are_secure_on_https(lti: Lti) -> None:
    from starlette.testclient import TestClient

    from lmsauth.app import create_app

    secure = lti.settings.model_copy(update={"public_url": "https://testserver"})
    with TestClient(create_app(secure), base_url="https://testserver", follow_redirects=False) as browser:
        launched = browser.post(
            "/commons/api/lti",
            content=lti.signed(url="https://testserver/commons/api/lti"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert launched.status_code == 303, launched.text
        assert "Secure" in launched.headers["set-cookie"]
        accept_terms_response = browser.get("/commons/terms")
        token = accept_terms_response.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert browser.post("/commons/terms", data={"csrf_token": token, "accept": "yes"}).status_code == 303
        created = browser.post("/commons/api/sessions", json={"jwt_token": lti.jwt()})
        assert created.status_code == 201
        assert "Secure" in created.headers["set-cookie"]


def test_clean_up_removes_only_what_can_never_be_used_again(client, lti: Lti) -> None:
    from lmsauth.commons.models import LtiNonce
    from lmsauth.commons.sessions import remove_expired
    from tests.conftest import run

    sid = _session(client, lti)

    def sweep() -> dict[str, int]:
        result: dict[str, int] = run(lti.directory._in_session(remove_expired))
        return result

    assert sweep() == {"commons_sessions": 0, "commons_lti_nonces": 0, "commons_used_jwts": 0}
    clock.advance(331)  # past the JWT and launch windows, well within the session's lifetime
    assert sweep() == {"commons_sessions": 0, "commons_lti_nonces": 1, "commons_used_jwts": 1}
    assert client.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 200
    clock.advance(12 * 3600)
    assert sweep()["commons_sessions"] == 2  # the launch's browser session and the API session
    assert lti.directory.query(select(LtiNonce.id)) == []


def _respelled(token: str) -> dict[str, str]:
    """Spellings of ``token``'s signature that PyJWT's lenient base64url decoding reads as the
    same bytes: each verifies. (Respelling the header or payload changes what is signed.)"""
    header, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(signature) == 43  # 32 bytes: the last character carries 2 unused bits
    low_bits = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]
    signed = f"{header}.{payload}"
    return {
        "trailing =": f"{token}=",
        "padding ==": f"{token}==",
        "junk": f"{signed}.{signature[:10]}!!!!{signature[10:]}",
        "junk after": f"{token}~~~~",
        "whitespace": f"{signed}.{signature[:20]} \n\t {signature[20:]}",
        "trailing spaces": f"{token}    ",
        "low bits": f"{signed}.{low_bits}",
    }


def test_one_jwt_opens_one_session_whatever_its_spelling(client, lti: Lti) -> None:
    """A replayed JWT respelled (padding, junk, the unused low bits of its last character)
    is refused as malformed, and the canonical JWT still opens exactly one session."""
    launch_and_accept(client, lti)
    token = lti.jwt()
    variants = _respelled(token)
    for name, variant in variants.items():
        assert variant != token, name
        assert pyjwt.decode(variant, SHARED_SECRET, algorithms=["HS256"]), name  # PyJWT alone takes it
        _error(_create(client, variant), 401, "invalid_jwt")
    assert _create(client, token).status_code == 201
    for variant in variants.values():
        _error(_create(client, variant), 401, "invalid_jwt")
    _error(_create(client, token), 401, "jwt_replayed")
    assert len(lti.directory.query(select(CommonsSession.id).where(CommonsSession.origin == "api"))) == 1


def _another_session(client, lti: Lti, age: int) -> str:
    """One more session for the user ``_session`` signed in (an ``iat`` ``30 * age`` s earlier)."""
    response = _create(client, lti.jwt(iat=clock.timestamp() - 30 * age))
    assert response.status_code == 201, response.text
    client.cookies.clear()
    sid: str = response.json()["sessionId"]
    return sid


def _ended(client, sid: str) -> bool:
    client.cookies.clear()
    read = client.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid})
    return read.status_code == 401


def test_a_cookie_only_logout_from_another_site_is_refused(client, lti: Lti) -> None:
    """A link on another site carries the ``session`` cookie: it must not log the reader out."""
    sid = _session(client, lti)
    for site in ("cross-site", "same-site"):
        client.cookies.set("session", sid, domain="testserver.local", path="/commons")
        refused = client.get("/commons/api/sessions/logout", headers={"Sec-Fetch-Site": site})
        _error(refused, 403, "cross_site_request")
        assert "set-cookie" not in refused.headers
        assert client.get(f"/commons/api/sessions/{sid}").status_code == 200  # still works, by cookie too
    # The browser's own pages (same-origin), typed URLs (none), and clients without the header.
    for age, headers in enumerate(({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}), 1):
        sid = _another_session(client, lti, age)
        client.cookies.set("session", sid, domain="testserver.local", path="/commons")
        assert client.get("/commons/api/sessions/logout", headers=headers).status_code == 204, headers
        assert _ended(client, sid), headers


def test_an_explicit_session_id_logs_out_from_any_site(client, lti: Lti) -> None:
    """No other site can put the id in a header, query or body: those keep working."""
    _session(client, lti)
    for age, place in enumerate(("header", "session-id", "state", "body"), 1):
        sid = _another_session(client, lti, age)
        client.cookies.set("session", sid, domain="testserver.local", path="/commons")
        headers = {"Sec-Fetch-Site": "cross-site"}
        if place == "header":
            headers["X-Session-ID"] = sid
        response = client.request(
            "GET",
            "/commons/api/sessions/logout",
            headers=headers,
            params={place: sid} if place in ("session-id", "state") else None,
            json={"sessionId": sid} if place == "body" else None,
        )
        assert response.status_code == 204, place
        assert _ended(client, sid), place
