"""What the Commons tests share: installing Commons in Canvas, signing launches as Canvas
does (oauthlib), walking the terms form, and getting a Canvas token and JWT."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client

from lmsauth.canvas import admin as canvas_admin
from lmsauth.canvas import tools
from lmsauth.canvas.keys import service as keys_service
from lmsauth.commons import admin as commons_admin
from lmsauth.core import clock
from lmsauth.settings import Settings
from tests.conftest import TEST_SECRET_KEY, Directory, Key, Person
from tests.flows import code_for

CONSUMER_KEY = "test-commons-key"
SHARED_SECRET = "test-commons-shared-secret-0123456789"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
SESSION_FIELDS = {
    "sid",
    "expires",
    "userId",
    "prefersHighContrast",
    "locale",
    "userFullName",
    "accountName",
    "accountId",
    "canvasUserId",
    "canvasApiDomain",
    "roles",
    "isAdmin",
    "canSharePublic",
    "canShowPublic",
    "showCuratedResourcesFirst",
    "showFederalStandards",
    "showStateStandards",
    "stateStandard",
    "isAccountCurator",
    "userAvatarUrl",
}


def unescape(value: str) -> str:
    return (
        value.replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


@dataclass
class Lti:
    """A consumer in Commons and the matching external tool in Canvas, plus one user."""

    directory: Directory
    settings: Settings
    tool_id: int
    user: Person
    key: Key
    launch_url: str
    domain: str = field(default="")

    @classmethod
    def install(cls, directory: Directory, settings: Settings) -> Lti:
        launch_url = f"{settings.public_url}{settings.commons_path}/api/lti"

        async def work(session: Any) -> tuple[int, Person, Key]:
            """Everything in one transaction: each test pays for one database connection."""
            await commons_admin.save_consumer(
                session,
                TEST_SECRET_KEY,
                name="Test University",
                consumer_key=CONSUMER_KEY,
                shared_secret=SHARED_SECRET,
                settings={"state_standard": "CA", "show_state_standards": True},
            )
            tool = await tools.save_external_tool(
                session,
                TEST_SECRET_KEY,
                name="Canvas Commons",
                url=launch_url,
                consumer_key=CONSUMER_KEY,
                shared_secret=SHARED_SECRET,
                privacy_level="public",
            )
            login, password, name = "student@example.edu", "correct horse battery", "Sam Student"
            user, _ = await canvas_admin.upsert_user(
                session,
                login=login,
                password=password,
                name=name,
                avatar_url="https://avatars.example/sam.png",
                locale="fr",
            )
            uris = ["https://app.example.com/callback"]
            key, secret = await keys_service.save_developer_key(
                session, name="Test Integration", redirect_uris=uris
            )
            assert secret is not None
            return tool.id, Person(user.id, login, password, name), Key(key.client_id, secret, uris)

        tool_id, user, key = directory_run(directory, work)
        host = settings.public_url.split("://", 1)[1]
        return cls(directory, settings, tool_id, user, key, launch_url, host)

    def launch_form(self, **overrides: str | None) -> dict[str, str]:
        """The launch parameters Canvas would send for ``self.user`` (before signing)."""
        params: dict[str, str] = {
            "lti_message_type": "basic-lti-launch-request",
            "lti_version": "LTI-1p0",
            "resource_link_id": "rl-1",
            "user_id": "opaque-user-1",
            "roles": "urn:lti:sysrole:ims/lis/User",
            "lis_person_name_full": self.user.name,
            "launch_presentation_locale": "fr",
            "user_image": "https://avatars.example/sam.png",
            "tool_consumer_instance_guid": "guid-1:canvas-lms",
            "custom_canvas_user_id": str(self.user.id),
            "custom_canvas_api_domain": self.domain,
        }
        for name, value in overrides.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        return params

    def signed(
        self,
        params: dict[str, str] | None = None,
        *,
        url: str | None = None,
        key: str = CONSUMER_KEY,
        secret: str = SHARED_SECRET,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> str:
        """A launch body signed with oauthlib, as a Canvas would sign it."""
        client = Client(
            key,
            client_secret=secret,
            signature_type=SIGNATURE_TYPE_BODY,
            timestamp=str(timestamp if timestamp is not None else clock.timestamp()),
            nonce=nonce or uuid.uuid4().hex,
        )
        _uri, _headers, body = client.sign(
            url or self.launch_url, http_method="POST", body=params or self.launch_form(), headers=FORM
        )
        return str(body)

    def jwt(self, *, secret: str = SHARED_SECRET, iat: int | None = None, **claims: Any) -> str:
        """A JWT shaped like Canvas's ``jwt_token`` for ``self.user``."""
        body: dict[str, Any] = {
            **self.launch_form(),
            "consumer_key": CONSUMER_KEY,
            "iat": iat if iat is not None else clock.timestamp(),
        }
        body.update(claims)
        return jwt.encode(body, secret, algorithm="HS256")

    def access_token(self, browser: Any) -> str:
        """An OAuth access token for ``self.user`` from the authorization-code flow."""
        code = code_for(
            browser, self.key.client_id, self.key.redirect_uris[0], self.user.login, self.user.password
        )
        response = browser.post(
            "/login/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": self.key.client_id,
                "client_secret": self.key.client_secret,
                "code": code,
                "redirect_uri": self.key.redirect_uris[0],
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def directory_run(directory: Directory, work: Any) -> Any:
    from tests.conftest import run

    return run(directory._in_session(work))


def launch_and_accept(client: Any, lti: Lti, body: str | None = None) -> None:
    """POST a signed launch, then accept the terms through the HTML form."""
    launched = client.post(f"{lti.settings.commons_path}/api/lti", content=body or lti.signed(), headers=FORM)
    assert launched.status_code == 303, launched.text
    accept_terms(client, lti)


def accept_terms(client: Any, lti: Lti) -> None:
    base = lti.settings.commons_path
    home = client.get(f"{base}/")
    assert home.status_code == 303 and home.headers["location"] == f"{base}/terms", home.text
    page = client.get(f"{base}/terms")
    assert page.status_code == 200, page.text
    token = CSRF.search(page.text)
    assert token, page.text
    accepted = client.post(f"{base}/terms", data={"csrf_token": token.group(1), "accept": "yes"})
    assert accepted.status_code == 303, accepted.text
    assert client.get(f"{base}/").status_code == 200


def now() -> int:
    return int(time.time())


def form_fields(html: str) -> list[tuple[str, str]]:
    return [(name, unescape(value)) for name, value in HIDDEN.findall(html)]


def parse_body(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))
