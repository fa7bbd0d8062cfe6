"""Fuzzing (issue 5): schemathesis generates requests for every operation of the published
OpenAPI document, valid and invalid, and sends them to a live server.

Every response must be a documented status with a documented content type, headers and body
schema; none may be a 5xx or show a Python stack trace. Half of the examples of an operation
that needs credentials carry real ones (a Canvas access token or client secret, a DAP token,
Identity Service client credentials, a Commons session), and half name things that exist (a
developer key, `self`, the `canvas` namespace), so the fuzzer gets past authentication and
"not found" too.

Examples are derandomized (the same run every time, in CI too) and bounded so that the whole
module stays well under a minute on two cores.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode

from tests.contract.conftest import CONFORMANCE, SCHEMA, TRACEBACK_MARKERS, FuzzTarget
from tests.identity.helpers import basic

OPERATIONS: list[APIOperation] = [result.ok() for result in SCHEMA.get_all_operations()]
EXAMPLES = 24  # per operation: about 30 s for the whole module on two busy cores

# Operations that must not receive valid credentials: one good example would end the very
# session or token the other operations' examples rely on.
DESTRUCTIVE = {
    "DELETE /login/oauth2/token",
    "GET /commons/api/sessions/logout",
    # A fuzzed id or hint may name the fuzzing token itself (revoked, or regenerated).
    "DELETE /api/v1/users/{user_id}/tokens/{id}",
    "PUT /api/v1/users/{user_id}/tokens/{id}",
}


def valid_credentials(target: FuzzTarget, operation: APIOperation) -> dict[str, Any]:
    """Headers (and path parameters) that authenticate ``operation``'s request for real."""
    label = operation.label
    if label in DESTRUCTIVE:
        return {}
    if operation.path.startswith("/api/"):
        return {"headers": {"Authorization": f"Bearer {target.canvas_token}"}}
    if operation.path.startswith("/dap/"):
        return {"headers": {"Authorization": f"Bearer {target.dap_token}"}}
    if label == "POST /ids/auth/login":
        return {"headers": {"Authorization": target.identity_basic}}
    if label == "POST /login/oauth2/token":
        return {"headers": {"Authorization": basic(target.client_id, target.client_secret)}}
    if label == "GET /commons/api/sessions/{session_id}":
        return {
            "headers": {"X-Session-ID": target.commons_session},
            "path_parameters": {"session_id": target.commons_session},
        }
    return {}


def known_values(target: FuzzTarget, operation: APIOperation) -> dict[str, dict[str, str]]:
    """Parameter values that name things that exist, so examples get past "not found"."""
    label = operation.label
    if operation.path.startswith("/api/"):
        return {
            "path_parameters": {"user_id": "self", "account_id": "self", "course_id": "1"},
            "query": {"tool_launch_url": target.tool_launch_url},
        }
    if operation.path.startswith("/dap/"):
        return {"path_parameters": {"namespace": "canvas", "table": "users"}}
    if label == "GET /login/oauth2/auth":
        return {
            "query": {
                "client_id": target.client_id,
                "redirect_uri": target.redirect_uri,
                "response_type": "code",
            }
        }
    if label == "POST /login/oauth2/token":
        return {"body": {"client_id": target.client_id, "client_secret": target.client_secret}}
    return {}


def _valid_or_not(operation: APIOperation) -> st.SearchStrategy[Case]:
    """Requests that match the document, and requests that break it on purpose."""
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )


def _merge(case: Case, values: dict[str, Any]) -> None:
    """Put ``values`` into the generated ``case``, keeping what else it holds."""
    if "headers" in values:
        case.headers = {**(case.headers or {}), **values["headers"]}
    if "path_parameters" in values:
        known = {
            name: value
            for name, value in values["path_parameters"].items()
            if name in (case.path_parameters or {})
        }
        case.path_parameters = {**(case.path_parameters or {}), **known}
    if "query" in values:
        case.query = {**(case.query or {}), **values["query"]}
    if "body" in values and isinstance(case.body, dict):
        case.body = {**case.body, **values["body"]}


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.label for operation in OPERATIONS])
def test_fuzz(operation: APIOperation, fuzz_target: FuzzTarget) -> None:
    http = requests.Session()
    credentials = valid_credentials(fuzz_target, operation)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_valid_or_not(operation), authenticated=st.booleans(), known=st.booleans())
    def fuzz(case: Case, authenticated: bool, known: bool) -> None:
        http.cookies.clear()
        if known and known_values(fuzz_target, operation):
            _merge(case, known_values(fuzz_target, operation))
        if authenticated and credentials:
            _merge(case, credentials)
        response = case.call(base_url=fuzz_target.url, session=http, allow_redirects=False, timeout=10)
        assert not any(marker in response.text for marker in TRACEBACK_MARKERS), response.text
        case.validate_response(response, checks=CONFORMANCE)

    try:
        fuzz()
    finally:
        http.close()
