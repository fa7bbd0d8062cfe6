"""Metrics (``core.metrics``): requests by route template, latencies, tokens issued and failures
by reason, and a ``/metrics`` endpoint that only this machine or the token holder can read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.core import metrics
from lmsauth.core.outage import outage_response
from lmsauth.settings import Settings
from tests.commons.support import FORM, Lti
from tests.conftest import Directory, LiveServer
from tests.full_flow import every_flow
from tests.identity.helpers import make_client

TOKEN = "metrics-token-0123456789abcdef"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Counter values before and after the code under test."""

    def __init__(self) -> None:
        self.before = {self._key(s.name, s.labels): s.value for s in self._samples()}

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> tuple[str, frozenset[tuple[str, str]]]:
        return name, frozenset(labels.items())

    @staticmethod
    def _samples() -> Iterator[object]:
        for family in REGISTRY.collect():
            if family.name.startswith("lmsauth_"):
                yield from family.samples

    def __call__(self, name: str, **labels: str) -> float:
        key = self._key(name, labels)
        return sample(name, **labels) - self.before.get(key, 0.0)


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    """The app with ``LMSAUTH_METRICS_TOKEN`` set."""
    app = create_app(settings.model_copy(update={"metrics_token": TOKEN}))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    return response.text


# ---------------------------------------------------------------------------- who may read /metrics


def test_without_a_token_only_this_machine_may_read_the_metrics(
    client: TestClient, live_server: LiveServer
) -> None:
    assert client.get("/metrics").status_code == 403  # TestClient's peer is "testclient", not loopback
    local = httpx.get(f"{live_server.url}/metrics")
    assert local.status_code == 200 and "lmsauth_requests_total" in local.text
    forwarded = httpx.get(f"{live_server.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 403
    assert "LMSAUTH_METRICS_TOKEN" in forwarded.text


def test_with_a_token_everyone_needs_it(guarded: TestClient) -> None:
    assert guarded.get("/metrics").status_code == 401
    wrong = guarded.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert "lmsauth_requests_total" in scrape(guarded)


def test_metrics_can_be_switched_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"metrics": False, "metrics_token": TOKEN}))
    delta = Delta()
    with TestClient(app) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404
        assert response.headers["x-request-id"]  # logging still runs
    assert delta("lmsauth_requests_total", method="GET", route="unmatched", status="404") == 0


def test_a_short_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(metrics_token="short")
    assert Settings(metrics_token="").metrics_token is None


# ---------------------------------------------------------------------------- request metrics


def test_requests_are_labelled_by_route_template_never_by_raw_path(guarded: TestClient) -> None:
    delta = Delta()
    secretish = "s3ss10n-id-that-must-not-become-a-label"
    guarded.get(f"/commons/api/sessions/{secretish}", headers={"X-Session-ID": secretish})
    guarded.get(f"/no/such/{secretish}?code={secretish}")
    guarded.get(f"/commons/no/such/{secretish}")
    guarded.request("BREW", "/healthz")
    guarded.post("/healthz")
    template = "/commons/api/sessions/{session_id}"
    assert delta("lmsauth_requests_total", method="GET", route=template, status="401") == 1
    assert delta("lmsauth_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("lmsauth_requests_total", method="GET", route="/commons/{path}", status="404") == 1
    assert delta("lmsauth_requests_total", method="other", route="/healthz", status="405") == 1
    assert delta("lmsauth_requests_total", method="POST", route="/healthz", status="405") == 1
    assert delta("lmsauth_request_duration_seconds_count", method="GET", route=template) == 1
    assert delta("lmsauth_request_duration_seconds_sum", method="GET", route=template) > 0
    assert secretish not in scrape(guarded)


# ---------------------------------------------------------------------------- tokens and failures


def test_every_flow_counts_its_tokens_and_failures(
    guarded: TestClient, directory: Directory, settings: Settings
) -> None:
    lti = Lti.install(directory, settings)
    identity = make_client(settings)
    delta = Delta()
    every_flow(guarded, lti, identity)

    issued = "lmsauth_tokens_issued_total"
    assert delta(issued, kind="canvas_code") == 1
    assert delta(issued, kind="canvas_token_authorization_code") == 1
    assert delta(issued, kind="canvas_token_refresh_token") == 1
    assert delta(issued, kind="identity_jwt") == 1
    assert delta(issued, kind="commons_session") == 2  # the LTI launch's, then the JWT's
    failures = "lmsauth_failures_total"
    assert delta(failures, service="canvas", reason="invalid_grant") == 1
    assert delta(failures, service="canvas", reason="invalid_access_token") == 1  # the refreshed-away token
    assert delta(failures, service="identity", reason="AuthenticationError") == 1

    guarded.post("/login/oauth2/token", data={"grant_type": "refresh_token", "client_id": "1"})
    guarded.post("/login/oauth2/token", data={"grant_type": "password"})
    guarded.post("/commons/api/sessions", json={"jwt_token": "not.a.jwt"})
    guarded.get("/dap/query/canvas/table")
    forged = guarded.post(
        "/commons/api/lti", content=lti.signed(secret="not-the-shared-secret"), headers=FORM
    )
    assert forged.status_code == 401, forged.text
    assert delta(failures, service="canvas", reason="invalid_client") == 1
    assert delta(failures, service="canvas", reason="unsupported_grant_type") == 1
    assert delta(failures, service="commons", reason="invalid_jwt") == 1
    assert delta(failures, service="dap", reason="AuthenticationError") == 1
    assert delta(failures, service="commons", reason="launch_refused") == 1
    text = scrape(guarded)
    assert 'lmsauth_tokens_issued_total{kind="identity_jwt"}' in text
    assert 'lmsauth_failures_total{reason="invalid_grant",service="canvas"}' in text


def test_a_refused_login_and_a_denied_consent_are_failures(client: TestClient, directory: Directory) -> None:
    from tests.flows import authorize, log_in

    user, key = directory.user(), directory.key()
    delta = Delta()
    assert log_in(client, user.login, "not the password").status_code == 400
    denied = authorize(client, key.client_id, key.redirect_uris[0], user.login, user.password, consent=False)
    assert "error=access_denied" in denied.headers["location"]
    assert delta("lmsauth_failures_total", service="canvas", reason="login_failed") == 1
    assert delta("lmsauth_failures_total", service="canvas", reason="access_denied") == 1
    assert delta("lmsauth_tokens_issued_total", kind="canvas_code") == 0


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/login/oauth2/token", "canvas"),
        ("/api/v1/users/self", "canvas"),
        ("/ids/auth/login", "identity"),
        ("/dap/query/canvas/table", "dap"),
    ],
)
def test_an_outage_is_counted_for_its_service(path: str, service: str) -> None:
    delta = Delta()
    assert outage_response(path).status_code == 503
    assert delta("lmsauth_failures_total", service=service, reason="backend_unavailable") == 1


def test_the_service_api_is_two_functions() -> None:
    delta = Delta()
    metrics.token_issued("test_kind")
    metrics.failure("test_service", "test_reason")
    assert delta("lmsauth_tokens_issued_total", kind="test_kind") == 1
    assert delta("lmsauth_failures_total", service="test_service", reason="test_reason") == 1


def test_the_answers_match_the_openapi_document(guarded: TestClient, client: TestClient) -> None:
    from tests.contract.conftest import conforms

    conforms(guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}), "GET", "/metrics")
    conforms(guarded.get("/metrics"), "GET", "/metrics")
    conforms(client.get("/metrics"), "GET", "/metrics")
