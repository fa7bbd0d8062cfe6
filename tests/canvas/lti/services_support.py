"""What the LTI Advantage service tests share: a tool's RSA key pair, an LTI developer key and
its tool installed in a course, people enrolled there, a tool's JWK Set served on loopback, and
lmsauth itself on a real port for pylti1p3 (which speaks HTTP through requests)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from pylti1p3.registration import Registration
from sqlalchemy import select

from lmsauth.canvas import admin
from lmsauth.canvas.courses.models import ENROLLMENT_TYPES, Course, Enrollment
from lmsauth.canvas.keys import service as keys_service
from lmsauth.canvas.lti.user_ids import lti_user_id
from lmsauth.canvas.models import Account, DeveloperKey, User, global_id
from lmsauth.canvas.tool_models import ExternalTool, seal
from lmsauth.settings import Settings
from tests.canvas.lti.tool import rsa_key_pair
from tests.conftest import TEST_SECRET_KEY, Directory, run, serving

TOKEN_PATH = "/login/oauth2/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LINEITEM = AGS + "lineitem"
LINEITEM_READONLY = AGS + "lineitem.readonly"
RESULT_READONLY = AGS + "result.readonly"
SCORE = AGS + "score"
AGS_SCOPES = [LINEITEM, LINEITEM_READONLY, RESULT_READONLY, SCORE]
ALL_SCOPES = [*AGS_SCOPES, NRPS_SCOPE]


@dataclass(frozen=True)
class ToolKeyPair:
    private_pem: str
    public_pem: str

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK as pylti1p3 publishes it (``kid``: the RFC 7638 thumbprint)."""
        return dict(Registration.get_jwk(self.public_pem))

    @property
    def kid(self) -> str:
        return str(self.jwk["kid"])


def tool_key_pair(name: str = "tool") -> ToolKeyPair:
    """One RSA key pair per name for the whole run (generating one costs ~100 ms)."""
    return _key_pair(name)


@cache
def _key_pair(name: str) -> ToolKeyPair:
    return ToolKeyPair(*rsa_key_pair())


def assertion(
    client_id: str,
    aud: str | list[str],
    *,
    pair: ToolKeyPair | None = None,
    kid: str | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A client assertion as pylti1p3 makes it (``ServiceConnector.get_access_token``)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now - 5,
        "exp": now + 60,
        "jti": "lti-service-token-" + str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        body.pop(name, None)
    headers = {"kid": kid} if kid else {}
    return jwt.encode(body, (pair or tool_key_pair()).private_pem, algorithm="RS256", headers=headers)


def token_form(client_assertion: str, scopes: list[str]) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion,
        "scope": " ".join(sorted(scopes)),
    }


class LtiWorld(Directory):
    """Makes LTI keys, courses, people and enrollments straight in the test's database, and
    keeps their ids by name."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.keys: dict[str, int] = {}  # name -> developer key id
        self.courses: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.tools: dict[str, int] = {}

    def client_id(self, key: str = "tool") -> str:
        return str(global_id(self.keys[key]))

    def key(
        self,
        name: str = "tool",
        *,
        scopes: list[str] | None = None,
        public_jwk: dict[str, Any] | None = None,
        public_jwk_url: str | None = None,
        inline: bool = True,
        **extra: Any,
    ) -> str:
        """An LTI developer key (its tool's public JWK inline unless a URL is given)."""

        async def work(session: Any) -> int:
            key, _ = await keys_service.save_developer_key(
                session,
                name=name,
                redirect_uris=[f"https://{name}.example.com/launch"],
                scopes=ALL_SCOPES if scopes is None else scopes,
            )
            key.is_lti_key = True
            if public_jwk_url is not None:
                key.public_jwk_url = public_jwk_url
            elif inline:
                key.public_jwk = public_jwk or tool_key_pair().jwk
            for attribute, value in extra.items():
                setattr(key, attribute, value)
            await session.flush()
            return int(key.id)

        self.keys[name] = run(self._in_session(work))
        return self.client_id(name)

    def course(self, name: str = "course", **extra: Any) -> int:
        async def work(session: Any) -> int:
            account = await session.scalar(select(Account).order_by(Account.id).limit(1))
            if account is None:
                account = Account(name="Site")
                session.add(account)
                await session.flush()
            course = Course(account_id=account.id, name=f"Course {name}", course_code=name.upper(), **extra)
            session.add(course)
            await session.flush()
            return int(course.id)

        self.courses[name] = run(self._in_session(work))
        return self.courses[name]

    def install(self, key: str = "tool", course: str | None = "course", name: str | None = None) -> int:
        """The key's tool, installed in ``course`` (or, with None, in the account)."""

        async def work(session: Any) -> int:
            account = await session.scalar(select(Account).order_by(Account.id).limit(1))
            tool = ExternalTool(
                account_id=account.id,
                name=key,
                url=f"https://{key}.example.com/launch",
                consumer_key="",
                shared_secret_sealed=seal(TEST_SECRET_KEY, "unused"),
                lti_version="1.3",
                developer_key_id=self.keys[key],
                course_id=self.courses[course] if course is not None else None,
            )
            session.add(tool)
            await session.flush()
            return int(tool.id)

        tool_id = run(self._in_session(work))
        self.tools[name or key] = tool_id
        return tool_id

    def person(self, login: str, name: str, **extra: Any) -> int:
        async def work(session: Any) -> int:
            user, _ = await admin.upsert_user(
                session, login=login, password="correct horse battery", name=name, **extra
            )
            return int(user.id)

        self.users[login] = run(self._in_session(work))
        return self.users[login]

    def enroll(self, login: str, role: str, course: str = "course", state: str = "active") -> None:
        async def work(session: Any) -> None:
            session.add(
                Enrollment(
                    course_id=self.courses[course],
                    user_id=self.users[login],
                    type=ENROLLMENT_TYPES[role],
                    workflow_state=state,
                )
            )

        run(self._in_session(work))

    def update(self, model: Any, row_id: int, **values: Any) -> None:
        async def work(session: Any) -> None:
            row = await session.get(model, row_id)
            for attribute, value in values.items():
                setattr(row, attribute, value)

        run(self._in_session(work))

    def set_key(self, name: str, **values: Any) -> None:
        self.update(DeveloperKey, self.keys[name], **values)


class JwksServer:
    """A tool's JWK Set on a loopback port; ``document`` (or ``raw``) is what it serves now."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.raw: bytes | None = None
        self.status = 200
        self.delay = 0.0
        self.location: str | None = None
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if owner.delay:
                    time.sleep(owner.delay)
                body = owner.raw if owner.raw is not None else json.dumps(owner.document).encode()
                self.send_response(owner.status)
                if owner.location:
                    self.send_header("Location", owner.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def serve(settings: Settings, **changes: Any) -> Iterator[str]:
    """lmsauth on a real loopback port, with some settings changed; yields its URL."""
    with serving(settings, **changes) as server:
        yield server.url


def registration(base_url: str, client_id: str, pair: ToolKeyPair | None = None) -> Registration:
    """pylti1p3's view of the platform, as a tool configures it."""
    pair = pair or tool_key_pair()
    return (
        Registration()
        .set_issuer(base_url)
        .set_client_id(client_id)
        .set_auth_token_url(base_url + TOKEN_PATH)
        .set_auth_login_url(base_url + "/api/lti/authorize_redirect")
        .set_key_set_url(base_url + "/api/lti/security/jwks")
        .set_tool_private_key(pair.private_pem)
        .set_tool_public_key(pair.public_pem)
    )


def service_token(
    client: Any, client_id: str, scopes: list[str] | None = None, *, base: str = "http://testserver"
) -> str:
    """A service token bought at ``client``'s token endpoint with a client assertion."""
    form = token_form(assertion(client_id, base + TOKEN_PATH), ALL_SCOPES if scopes is None else scopes)
    response = client.post(TOKEN_PATH, data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def classroom(world: LtiWorld) -> dict[str, int]:
    """A course with the tool installed, and people in every role (plus some who must not be
    listed): logins by role."""
    world.key()
    world.course()
    world.install()
    world.course("other")
    people = {
        "teacher": ("teacher@example.edu", "Tess Teacher"),
        "ta": ("ta@example.edu", "Tom Assistant"),
        "student": ("student@example.edu", "Sam Student"),
        "student2": ("student2@example.edu", "Sue Second"),
        "designer": ("designer@example.edu", "Dee Designer"),
        "observer": ("observer@example.edu", "Olly Observer"),
        "dropped": ("dropped@example.edu", "Dan Dropped"),
        "elsewhere": ("elsewhere@example.edu", "Eve Elsewhere"),
    }
    for login, name in people.values():
        world.person(login, name)
    for role in ("teacher", "ta", "student", "student2", "designer", "observer"):
        world.enroll(people[role][0], "student" if role == "student2" else role)
    world.enroll("teacher@example.edu", "student")  # a second enrollment: still one member
    world.enroll("dropped@example.edu", "student", state="deleted")
    world.enroll("elsewhere@example.edu", "student", course="other")
    return {role: world.users[login] for role, (login, _) in people.items()}


def now_iso(offset: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset)).isoformat()


def lti_id(world: LtiWorld, user_id: int) -> str:
    user = world.query(select(User).where(User.id == user_id))[0][0]
    return lti_user_id(user.uuid)


def items_path(world: LtiWorld, course: str = "course") -> str:
    return f"/api/lti/courses/{world.courses[course]}/line_items"


class Tool:
    """The tool's side over the in-process app: its token and JSON calls."""

    def __init__(
        self, client: Any, world: LtiWorld, key: str = "tool", scopes: list[str] | None = None
    ) -> None:
        self.client = client
        self.token = service_token(client, world.client_id(key), AGS_SCOPES if scopes is None else scopes)

    def call(self, method: str, url: str, body: Any = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.request(method, url, json=body, params=params or None, headers=headers)

    def create(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", path, {"label": "Quiz", "scoreMaximum": 10, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def score(self, item_url: str, user: str, **body: Any) -> Any:
        score = {
            "userId": user,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": now_iso(),
            **body,
        }
        return self.call("POST", item_url + "/scores", {k: v for k, v in score.items() if v is not None})


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")
