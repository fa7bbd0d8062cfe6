"""The one-click authorization-code flow: a browser and a client played against this very
server over HTTP, step by step, for a seeded developer key and user.

It goes through the real endpoints (so it shows up in the traffic log and meets any injected
fault), with its own cookie jar, and stops at the first redirect that leaves the server: the
client's callback, where it reads the code. Runs in a thread; database look-ups that explain
each credential are handed back to the server's event loop.
"""

from __future__ import annotations

import asyncio
import html
import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from lmsauth.emulator.state import SeededKey, SeededUser

TIMEOUT = 30
LOGIN_CSRF = re.compile(r'name="authenticity_token" value="([^"]+)"')
CONSENT_CSRF = re.compile(r'name="custom_csrf_token" value="([^"]+)"')
OOB_CODE = re.compile(r'id="oob-code">([^<]+)<')

Lookup = Callable[[str, str], "dict[str, Any] | None"]


class FlowFailed(Exception):
    def __init__(self, message: str, steps: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.message = message
        self.steps = steps


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class _Browser:
    base: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            _NoRedirects(), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(
        self,
        title: str,
        method: str,
        url: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        shown_form: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                status, raw_headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, raw_headers, body = exc.code, exc.headers, exc.read()
        reply_headers = {name.lower(): value for name, value in raw_headers.items()}
        text = body.decode("utf-8", "replace")
        step: dict[str, Any] = {"title": title, "method": method, "url": url, "status": status}
        if shown_form is not None:
            step["form"] = shown_form
        if "location" in reply_headers:
            step["location"] = reply_headers["location"]
        if reply_headers.get("content-type", "").startswith("application/json"):
            step["json"] = json.loads(text) if text else None
        self.steps.append(step)
        return status, reply_headers, text

    def fail(self, message: str) -> FlowFailed:
        return FlowFailed(message, self.steps)


def _decoded(kind: str, value: str, lookup: Lookup) -> dict[str, Any]:
    """A credential explained: a JWT's header and claims; for Canvas's opaque random strings,
    their form and what the database holds for them (found by digest, as the server does)."""
    result: dict[str, Any] = {"kind": kind, "value": value}
    if value.count(".") == 2:
        try:
            result["jwt_header"] = jwt.get_unverified_header(value)
            result["jwt_claims"] = jwt.decode(value, options={"verify_signature": False})
            return result
        except jwt.PyJWTError:
            pass
    result["format"] = f"opaque: {len(value)} random characters; the server keeps only their SHA-256 digest"
    result["record"] = lookup(kind, value)
    return result


def run(base: str, key: SeededKey, user: SeededUser, lookup: Lookup) -> dict[str, Any]:
    """The whole flow; returns its steps, the token response and each credential decoded."""
    browser = _Browser(base)
    redirect_uri = key.redirect_uris[0]
    state = secrets.token_urlsafe(12)
    query = urllib.parse.urlencode(
        {"client_id": key.client_id, "response_type": "code", "redirect_uri": redirect_uri, "state": state}
    )
    status, headers, text = browser.call(
        "The client sends the browser to the authorization endpoint",
        "GET",
        f"{base}/login/oauth2/auth?{query}",
    )
    code: str | None = None
    for _ in range(10):
        location = headers.get("location")
        if location is not None:
            target = urllib.parse.urljoin(base + "/", location)
            if not target.startswith(base + "/"):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
                if "code" not in params:
                    raise browser.fail(f"the server sent the browser back without a code: {target}")
                if params.get("state") != state:
                    raise browser.fail("the state came back changed")
                code = params["code"]
                break
            status, headers, text = browser.call("The browser follows the redirect", "GET", target)
            continue
        if status != 200:
            raise browser.fail(f"unexpected status {status}")
        login_csrf, consent_csrf, oob = (
            LOGIN_CSRF.search(text),
            CONSENT_CSRF.search(text),
            OOB_CODE.search(text),
        )
        if oob:
            code = html.unescape(oob.group(1))
            break
        if consent_csrf:
            status, headers, text = browser.call(
                "The person authorizes the application",
                "POST",
                f"{base}/login/oauth2/accept",
                {"custom_csrf_token": html.unescape(consent_csrf.group(1))},
                shown_form={"custom_csrf_token": "(from the consent page)"},
            )
        elif login_csrf:
            status, headers, text = browser.call(
                "The person signs in",
                "POST",
                f"{base}/login/canvas",
                {
                    "authenticity_token": html.unescape(login_csrf.group(1)),
                    "pseudonym_session[unique_id]": user.login,
                    "pseudonym_session[password]": user.password,
                },
                shown_form={"pseudonym_session[unique_id]": user.login, "pseudonym_session[password]": "***"},
            )
        else:
            raise browser.fail("a page with neither a login nor a consent form")
    if code is None:
        raise browser.fail("the authorization never finished")
    decoded = [_decoded("code", code, lookup)]
    status, headers, text = browser.call(
        "The client trades the code for tokens",
        "POST",
        f"{base}/login/oauth2/token",
        {
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        },
        shown_form={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "code": "(the code above)",
        },
    )
    if status != 200:
        raise browser.fail(f"the token endpoint answered {status}")
    token: dict[str, Any] = json.loads(text)
    for kind in ("access_token", "refresh_token"):
        if isinstance(token.get(kind), str):
            decoded.append(_decoded(kind, token[kind], lookup))
    if isinstance(token.get("access_token"), str):
        browser.call(
            "The client calls the API with the access token",
            "GET",
            f"{base}/api/v1/users/self",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    return {"steps": browser.steps, "token": token, "decoded": decoded}


async def run_in_thread(base: str, key: SeededKey, user: SeededUser, lookup: Any) -> dict[str, Any]:
    """``lookup`` is an async ``(kind, value) -> record``; the thread waits on the server's loop."""
    loop = asyncio.get_running_loop()

    def blocking_lookup(kind: str, value: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = asyncio.run_coroutine_threadsafe(lookup(kind, value), loop).result(
            TIMEOUT
        )
        return result

    return await asyncio.to_thread(run, base, key, user, blocking_lookup)
