"""Redirect URI rules (spec 3.3): exact list match, Canvas's lenient legacy domain rule, and
the strict profile's exact matching with RFC 8252's loopback-port exception."""

from __future__ import annotations

import ada_url
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmsauth.canvas.redirects import final_redirect, lenient_match, redirect_uri_allowed, to_query
from tests.canvas.support import AUTH, auth_params, expected_query, pkce_pair, sign_in
from tests.conftest import Directory
from tests.flows import query_of

LIST = ["https://app.example.com/callback", "com.example.app:/oauth"]
LEGACY = "https://example.com/oauth/callback"


def canvas(requested: str | None, uris: list[str] = LIST, legacy: str | None = LEGACY) -> bool:
    return redirect_uri_allowed(requested, uris, legacy, strict=False)


def strict(requested: str | None, uris: list[str] = LIST) -> bool:
    return redirect_uri_allowed(requested, uris, LEGACY, strict=True)


# ---------------------------------------------------------------- canvas profile


@pytest.mark.parametrize("requested", [*LIST, "urn:ietf:wg:oauth:2.0:oob"])
def test_exact_match_and_out_of_band_are_accepted(requested: str) -> None:
    assert canvas(requested)
    assert canvas(requested, legacy=None)


@pytest.mark.parametrize("requested", [None, ""])
def test_blank_is_refused(requested: str | None) -> None:
    assert not canvas(requested)
    assert not strict(requested)


@pytest.mark.parametrize(
    "requested",
    [
        "https://example.com/oauth/callback",
        "https://example.com/",
        "https://example.com",
        "https://example.com/some/other/path",  # path ignored
        "https://example.com:8443/oauth/callback",  # port ignored
        "https://example.com/oauth/callback?next=/home",  # query ignored
        "https://api.example.com/cb",  # subdomain
        "https://a.b.example.com/cb",  # deeper subdomain
        "HTTPS://EXAMPLE.COM/cb",  # scheme and host compare without case
    ],
)
def test_lenient_legacy_match_accepts(requested: str) -> None:
    assert canvas(requested)
    assert lenient_match(LEGACY, requested)


@pytest.mark.parametrize(
    "requested",
    [
        "http://example.com/oauth/callback",  # other scheme
        "ftp://example.com/oauth/callback",
        "https://evilexample.com/oauth/callback",  # suffix but not a subdomain
        "https://example.com.evil.com/oauth/callback",
        "https://example.com@evil.com/oauth/callback",  # userinfo trick
        "https://example.com:443@evil.com/",
        "https://example.com%40evil.com/",
        "https://evil.com/https://example.com/",
        "https://evil.com/?r=https://example.com",
        "https://evil.com#@example.com",
        "https://evil.com\\@example.com/",  # browsers treat "\" as "/": the host is evil.com
        "https://evil.com\t.example.com/",  # urlsplit drops the tab; Ruby's URI refuses it
        "https://evil.com\n.example.com/",
        "https://ex ample.com/",
        "https://évil.example.com/",
        "//example.com/cb",  # no scheme
        "example.com/cb",
        "https:///cb",
        "https://[::1/",  # does not parse
        "com.example.app:/other",  # custom scheme, not in the list: no host to compare
        "https://example.com:5000.evil.com/cb",  # no port: browsers refuse the URL
        "https://api.example.com:443.evil.com/cb",
        "https://example.com:+443/cb",
        "https://example.com:99999/cb",
        "https://a%2f.example.com/cb",  # a browser decodes the host, then refuses it
        "https://a..example.com/cb",
        "https://.example.com/cb",
        "https://user@me@example.com/cb",
    ],
)
def test_lenient_legacy_match_refuses(requested: str) -> None:
    assert not canvas(requested)


def test_lenient_rule_refuses_a_port_that_is_no_number() -> None:
    """urlsplit reads ``localhost:5000.evil.com`` as host ``localhost``; browsers refuse it."""
    assert not canvas("http://localhost:5000.evil.com/callback", legacy="http://localhost:5000/callback")
    assert canvas("http://localhost:5001/other", legacy="http://localhost:5000/callback")


def test_an_ip_address_has_no_subdomains() -> None:
    assert canvas("http://127.0.0.1:8000/cb", legacy="http://127.0.0.1/cb")
    assert not canvas("http://1.127.0.0.1/cb", legacy="http://127.0.0.1/cb")
    assert canvas("http://[::1]:8000/cb", legacy="http://[::1]/cb")


def test_without_legacy_uri_only_exact_matches_count() -> None:
    assert canvas("https://app.example.com/callback", legacy=None)
    assert not canvas("https://app.example.com/other", legacy=None)
    assert not canvas("https://sub.app.example.com/callback", legacy=None)


def test_list_entries_do_not_enable_the_lenient_rule() -> None:
    assert not canvas("https://app.example.com/other", uris=LIST, legacy="https://unrelated.example.org/")


# ---------------------------------------------------------------- strict profile


def test_strict_accepts_out_of_band_only_where_the_key_lists_it() -> None:
    """Canvas takes ``urn:ietf:wg:oauth:2.0:oob`` from any key; the strict profile only from a
    key that registered it, as any other redirect URI."""
    oob = "urn:ietf:wg:oauth:2.0:oob"
    assert not strict(oob)
    assert strict(oob, uris=[*LIST, oob])
    assert canvas(oob, uris=[], legacy=None)


def test_strict_refuses_unregistered_out_of_band_at_the_auth_endpoint(
    strict_client, directory: Directory
) -> None:
    key = directory.key(redirect_uris=["https://app.example.com/callback"])
    _, challenge = pkce_pair()
    params = auth_params(key, redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = strict_client.get(AUTH, params=params)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "redirect_uri does not match client settings",
    }


def test_strict_accepts_exact_matches_only() -> None:
    assert strict("https://app.example.com/callback")
    for near in [
        "https://example.com/oauth/callback",  # the legacy URI's domain: lenient only
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x=1",
        "https://app.example.com:443/callback",
        "https://sub.app.example.com/callback",
        "HTTPS://app.example.com/callback",
    ]:
        assert not strict(near), near


@pytest.mark.parametrize(
    ("registered", "host"),
    [
        ("http://127.0.0.1/cb", "127.0.0.1"),
        ("http://127.0.0.1:8000/cb", "127.0.0.1"),
        ("http://[::1]:8000/cb", "[::1]"),
    ],
)
def test_strict_loopback_may_use_any_port(registered: str, host: str) -> None:
    assert strict(f"http://{host}:51234/cb", [registered])
    assert strict(f"http://{host}/cb", [registered])
    assert not strict(f"http://{host}:51234/other", [registered])
    assert not strict(f"https://{host}:51234/cb", [registered])
    assert not strict(f"http://{host}:51234/cb?x=1", [registered])


def test_strict_loopback_exception_needs_the_same_loopback_host() -> None:
    registered = ["http://127.0.0.1:8000/cb"]
    assert not strict("http://localhost:8000/cb", registered)
    assert not strict("http://127.0.0.2:8000/cb", registered)
    assert not strict("http://evil.com:8000/cb", registered)
    assert not strict("http://127.0.0.1:notaport/cb", registered)
    assert not strict("http://127.0.0.1:9000/c\tb", ["http://127.0.0.1:8000/cb"])


def test_strict_loopback_exception_is_only_for_loopback() -> None:
    assert not strict("https://app.example.com:8443/callback")
    assert not strict("http://app.example.com:81/cb", ["http://app.example.com/cb"])


# ---------------------------------------------------------------- as a browser reads them

REGISTERED = [
    "https://example.com/oauth/callback",
    "http://localhost:5000/callback",
    "http://127.0.0.1/cb",
    "http://[::1]:8000/cb",
    "https://sub.example.co.uk/",
]
_TRICKY = "aZ09-_.%:@![]+~/\\?#;,=$&'()*"


def _tricky(pieces: list[str]) -> st.SearchStrategy[str]:
    """A few known tricks, or short text made of the characters URL parsers disagree on."""
    return st.one_of(st.sampled_from(pieces), st.text(_TRICKY, max_size=6))


@st.composite
def requested_uris(draw: st.DrawFn, registered: str) -> str:
    """URIs built around ``registered``'s host, the way an attacker varies one."""
    host = ada_url.URL(registered).hostname
    scheme = draw(st.sampled_from(["https", "http", "HTTPS", "hTtP", "ftp"]))
    userinfo = draw(_tricky(["", "user@", "a:b@", "evil.com@", "x@y@", "%40@", host + "@"]))
    before = draw(_tricky(["", "api.", "a.b.", "evil.com.", "evil", "a%2f.", "a..", ".", "xn--zz.", "1."]))
    after = draw(_tricky(["", ".", ".evil.com", "evil.com", "%2eevil.com", "%00", ":"]))
    port = draw(_tricky(["", ":", ":443", ":5000", ":5000.evil.com", ":+80", ":99999", ":0x50", ":80a"]))
    rest = draw(_tricky(["", "/cb", "/\\@evil.com", "?x=@evil.com", "#@evil.com", "@evil.com/"]))
    return f"{scheme}://{userinfo}{before}{host}{after}{port}{rest}"


def _browser_target(uri: str) -> tuple[str, str] | None:
    """The scheme and host a browser goes to (WHATWG URL parsing, by ada), or None."""
    try:
        parsed = ada_url.URL(uri)
    except ValueError:
        return None
    return parsed.protocol.rstrip(":"), parsed.hostname


@settings(derandomize=True, max_examples=500, deadline=None)
@given(data=st.data(), registered=st.sampled_from(REGISTERED))
def test_accepted_uris_lead_a_browser_to_the_registered_host(data: st.DataObject, registered: str) -> None:
    """Whatever the lenient rule (or the strict profile's loopback exception) accepts, a browser
    parses, and goes to the registered host or one of its subdomains, over the same scheme."""
    requested = data.draw(st.one_of(requested_uris(registered), st.text(max_size=40)), label="requested")
    scheme, host = ada_url.URL(registered).protocol.rstrip(":"), ada_url.URL(registered).hostname
    if canvas(requested, uris=[], legacy=registered):
        target = _browser_target(requested)
        assert target is not None, f"browsers refuse {requested!r}"
        assert target[0] == scheme
        assert target[1] == host or target[1].endswith("." + host), target
    if strict(requested, [registered]) and requested != registered:
        assert _browser_target(requested) == (scheme, host), requested


# ---------------------------------------------------------------- building the redirect back


def test_final_redirect_appends_sorted_cgi_escaped_parameters() -> None:
    params: dict[str, str | None] = {"state": "a b", "code": "c/d", "error": None}
    assert final_redirect("https://x.example/cb", params, AUTH) == "https://x.example/cb?code=c%2Fd&state=a+b"
    assert (
        final_redirect("https://x.example/cb?t=1", params, AUTH)
        == "https://x.example/cb?t=1&code=c%2Fd&state=a+b"
    )
    assert final_redirect("urn:ietf:wg:oauth:2.0:oob", params, AUTH) == AUTH + "?code=c%2Fd&state=a+b"


def test_fragment_in_the_registered_uri_is_not_special() -> None:
    assert (
        final_redirect("https://x.example/cb#frag", {"code": "c"}, AUTH) == "https://x.example/cb#frag?code=c"
    )


def test_to_query_keeps_empty_values_and_drops_none() -> None:
    assert to_query({"state": "", "code": "1", "error": None}) == "code=1&state="
    assert to_query({"b": "*~-._", "a": "!'()"}) == "a=%21%27%28%29&b=%2A~-._"


# ---------------------------------------------------------------- over HTTP


def test_http_lenient_subdomain_is_accepted_and_used(client, directory: Directory) -> None:
    key = directory.key(redirect_uris=["https://example.com/cb"])
    response = client.get(
        AUTH,
        params={
            **auth_params(key, state="s", response_type="x"),
            "redirect_uri": "https://api.example.com/x?y=1",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "https://api.example.com/x?y=1&" + expected_query(
        error="unsupported_response_type", error_description="Only response_type=code is permitted", state="s"
    )


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evilexample.com/cb",
        "http://example.com/cb",
        "https://example.com@evil.com/cb",
        "https://evil.com\\@example.com/cb",
        "https://example.com:5000.evil.com/cb",
    ],
)
def test_http_lenient_refusals(client, directory: Directory, redirect_uri: str) -> None:
    key = directory.key(redirect_uris=["https://example.com/cb"])
    response = client.get(AUTH, params={**auth_params(key), "redirect_uri": redirect_uri})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "redirect_uri does not match client settings",
    }


def test_http_explicit_legacy_redirect_uri(client, directory: Directory) -> None:
    key = directory.key(
        redirect_uris=["https://app.example.com/cb"], legacy_redirect_uri="https://other.example.org/"
    )
    assert (
        client.get(
            AUTH, params={**auth_params(key), "redirect_uri": "https://x.other.example.org/cb"}
        ).status_code
        == 302
    )
    assert (
        client.get(
            AUTH, params={**auth_params(key), "redirect_uri": "https://app.example.com/other"}
        ).status_code
        == 400
    )


def test_strict_profile_refuses_the_lenient_match(strict_client, directory: Directory) -> None:
    key = directory.key(redirect_uris=["https://example.com/cb"])
    _, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    exact = strict_client.get(AUTH, params=auth_params(key, **pkce))
    assert exact.status_code == 302
    assert exact.headers["location"] == "/login/canvas"
    lenient = strict_client.get(
        AUTH, params={**auth_params(key, **pkce), "redirect_uri": "https://api.example.com/cb"}
    )
    assert lenient.status_code == 400
    assert lenient.json()["error_description"] == "redirect_uri does not match client settings"


def test_strict_profile_loopback_port_over_http(strict_client, directory: Directory) -> None:
    key = directory.key(redirect_uris=["http://127.0.0.1/callback"])
    _, challenge = pkce_pair()
    response = strict_client.get(
        AUTH,
        params={
            **auth_params(key, code_challenge=challenge, code_challenge_method="S256", response_type="x"),
            "redirect_uri": "http://127.0.0.1:49152/callback",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith(
        "http://127.0.0.1:49152/callback?error=unsupported_response_type"
    )


@pytest.mark.parametrize("method", [None, "plain", "s256"])
def test_strict_profile_requires_s256_pkce(strict_client, directory: Directory, method: str | None) -> None:
    key = directory.key()
    params = auth_params(key, state="s")
    if method is not None:
        params.update(code_challenge=pkce_pair()[1], code_challenge_method=method)
    response = strict_client.get(AUTH, params=params)
    assert response.status_code == 302
    assert response.headers["location"] == key.redirect_uris[0] + "?" + expected_query(
        error="invalid_request",
        error_description="code_challenge with code_challenge_method=S256 is required",
        state="s",
    )


def test_strict_profile_full_flow_with_pkce(strict_client, directory: Directory) -> None:
    from tests.canvas.support import exchange, get_code

    key, user = directory.key(), directory.user()
    verifier, challenge = pkce_pair()
    code = get_code(strict_client, key, user, code_challenge=challenge, code_challenge_method="S256")
    without = exchange(strict_client, key, code)
    assert without.status_code == 400
    assert without.json()["error"] == "invalid_grant"
    response = exchange(strict_client, key, code, code_verifier=verifier)
    assert response.status_code == 200, response.text


def test_canvas_profile_does_not_require_pkce(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key))
    assert response.headers["location"] == "/login/oauth2/confirm"
    assert "error" not in query_of(response.headers["location"])
