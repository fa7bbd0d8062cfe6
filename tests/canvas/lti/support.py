"""What the LTI launch tests share: courses and enrollments made straight in the database (the
Courses API is not this package's), LTI keys made by the same service the CLI uses, the HTML
forms of the launch pages, and the browser's walk through a launch."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

from lmsauth.canvas.courses.models import Course, Enrollment
from lmsauth.canvas.keys import lti
from lmsauth.canvas.models import DeveloperKey
from lmsauth.settings import Settings
from tests.canvas.lti.tool import Platform, Tool, public_jwk
from tests.conftest import Directory, Person, run
from tests.flows import log_in

NRPS = lti.NRPS_SCOPE
AGS = list(lti.AGS_SCOPES[:4])


def _in_session(settings: Settings, work: Any) -> Any:
    return Directory(settings)._in_session(work)


def make_course(settings: Settings, name: str = "Biology 101", code: str = "BIO101", **extra: Any) -> int:
    async def work(session: Any) -> int:
        from lmsauth.canvas.admin import root_account

        account = await root_account(session)
        course = Course(account_id=account.id, name=name, course_code=code, **extra)
        session.add(course)
        await session.flush()
        return course.id

    result: int = run(_in_session(settings, work))
    return result


def enroll(
    settings: Settings, course_id: int, user: Person, kind: str = "StudentEnrollment", **extra: Any
) -> None:
    async def work(session: Any) -> None:
        session.add(Enrollment(course_id=course_id, user_id=user.id, type=kind, **extra))

    run(_in_session(settings, work))


def lti_key(
    settings: Settings,
    tool: Tool,
    *,
    course_id: int | None = None,
    scopes: tuple[str, ...] = (NRPS, *AGS),
    placements: tuple[str, ...] = ("course_navigation", "link_selection", "assignment_selection"),
    custom: dict[str, str] | None = None,
    privacy_level: str = "public",
    jwk_url: bool = False,
    redirect_uris: list[str] | None = None,
    name: str = "Test Tool",
) -> Platform:
    """An LTI key for ``tool`` and its tool installed (in the account, or ``course_id``): what
    ``lmsauth lti-key create`` makes."""

    async def work(session: Any) -> Platform:
        config = lti.build_tool_configuration(
            title=name,
            initiation_url=tool.login_url,
            target_link_uri=tool.launch_url,
            public_jwk=None if jwk_url else public_jwk(tool.public_pem),
            public_jwk_url=tool.base + "/jwks" if jwk_url else None,
            scopes=list(scopes),
            placements=list(placements),
            custom_fields=custom or {},
            privacy_level=privacy_level,
        )
        key = await lti.save_lti_key(
            session,
            name=name,
            redirect_uris=redirect_uris or [tool.launch_url],
            tool_configuration=config,
            secret_key=settings.resolved_secret_key,
        )
        installed = await lti.install(session, key, settings.resolved_secret_key, course_id=course_id)
        return Platform(
            client_id=key.client_id,
            deployment_id=await lti.tool_deployment_id(session, installed),
            tool_id=installed.id,
            **lti.platform_urls(settings.public_url),
        )

    result: Platform = run(_in_session(settings, work))
    return result


def set_key(settings: Settings, client_id: str, **fields: Any) -> None:
    async def work(session: Any) -> None:
        key = await session.get(DeveloperKey, int(client_id) - 10_000_000_000_000)
        for name, value in fields.items():
            setattr(key, name, value)

    run(_in_session(settings, work))


@dataclass
class Form:
    id: str | None
    action: str
    fields: list[tuple[str, str]]

    @property
    def data(self) -> dict[str, str]:
        return dict(self.fields)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append(Form(found.get("id"), found.get("action") or "", []))
        elif tag == "input" and self.forms and found.get("name"):
            self.forms[-1].fields.append((found["name"] or "", found.get("value") or ""))


def forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def form(page: str, form_id: str) -> Form:
    found = [each for each in forms(page) if each.id == form_id]
    assert found, f"no form #{form_id} in {page[:2000]}"
    return found[0]


def signed_in_browser(base_url: str, user: Person) -> httpx.Client:
    """A person's browser: cookies for every host, redirects followed as a browser does."""
    browser = httpx.Client(base_url=base_url, follow_redirects=True, timeout=20)
    response = log_in(browser, user.login, user.password)
    assert response.status_code == 200, response.text
    return browser


def auth_request(login: dict[str, str], launch_url: str, **changes: str | None) -> dict[str, str]:
    """pylti1p3's authentication request for this login initiation (spec 9.1 step 4); a
    change to None leaves the parameter out."""
    params: dict[str, str | None] = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": launch_url,
        "state": "state-123",
        "nonce": "nonce-" + login["lti_message_hint"][-12:],
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        **changes,
    }
    return {name: value for name, value in params.items() if value is not None}


@dataclass
class LaunchSteps:
    login: Form  # the login initiation Canvas posts to the tool
    authorize: httpx.Response  # /api/lti/authorize's answer
    response: Form | None  # its form to the tool (id_token and state, or the error)
    tool: httpx.Response | None  # the tool's answer to that post


def launch(browser: httpx.Client, path: str, *, post_to_tool: bool = True) -> LaunchSteps:
    """Open ``path`` (``/courses/:id/external_tools/:id...``) and walk the launch as a browser
    without JavaScript: post the login form to the tool, follow its redirect through
    ``authorize_redirect`` to ``authorize``, and post that page's form to the tool."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    login = form(page.text, "tool_form")
    authorize = browser.post(login.action, data=login.data)
    if authorize.status_code != 200 or "authorization_redirect_form" not in authorize.text:
        return LaunchSteps(login, authorize, None, None)
    response = form(authorize.text, "authorization_redirect_form")
    answer = browser.post(response.action, data=response.data) if post_to_tool else None
    return LaunchSteps(login, authorize, response, answer)
