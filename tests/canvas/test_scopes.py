"""Scope rules (spec 3.4 and 7.4): parsing, Rails' ``to_sentence``, and Canvas's route-pattern
matching of ``url:<VERB>|<path>`` scopes."""

from __future__ import annotations

import pytest

from lmsauth.canvas.scopes import (
    USERINFO,
    allows,
    english_list,
    invalid_scope_description,
    is_known,
    is_userinfo,
    not_granted,
    parse,
)


@pytest.mark.parametrize(
    ("items", "sentence"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a and b"),
        (["a", "b", "c"], "a, b, and c"),
        (["a", "b", "c", "d"], "a, b, c, and d"),
    ],
)
def test_english_list(items: list[str], sentence: str) -> None:
    assert english_list(items) == sentence


def test_invalid_scope_description() -> None:
    assert invalid_scope_description(["x", "y"]) == (
        "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource "
        "owner. The following scopes were requested, but not granted: x and y"
    )


@pytest.mark.parametrize(
    ("raw", "scopes"),
    [(None, []), ("", []), ("   ", []), ("a", ["a"]), ("a b\tc\n d", ["a", "b", "c", "d"])],
)
def test_parse_splits_on_whitespace(raw: str | None, scopes: list[str]) -> None:
    assert parse(raw) == scopes


def test_not_granted() -> None:
    allowed = ["a", "b"]
    assert not_granted(["a"], allowed) is None
    assert not_granted(["a", "b"], allowed) is None
    assert not_granted(["a", "c", "d"], allowed) == ["c", "d"]
    assert not_granted([], allowed) == []  # an empty request is invalid on a scoped key
    assert not_granted(["A"], allowed) == ["A"]  # exact strings


def test_is_userinfo() -> None:
    assert is_userinfo([USERINFO])
    assert is_userinfo(["userinfo"])
    assert not is_userinfo([])
    assert not is_userinfo([USERINFO, "url:GET|/api/v1/courses"])
    assert not is_userinfo(["/auth/userinfox"])
    assert not is_userinfo(["/auth/myuserinfo"])


@pytest.mark.parametrize(
    "scope",
    [
        USERINFO,
        "cd2",
        "url:GET|/api/v1/users/:id",
        "url:DELETE|/api/v1/courses/:course_id/files/*path",
        "url:POST|/api/v1/courses(/:id)",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://canvas.instructure.com/lti/public_jwk/scope/update",
    ],
)
def test_known_scopes(scope: str) -> None:
    assert is_known(scope)


@pytest.mark.parametrize(
    "scope",
    [
        "",
        "url:GET|/other/path",
        "url:FETCH|/api/v1/x",
        "url:get|/api/v1/x",
        "url:GET /api/v1/x",
        "admin",
        "https://evil.example/x",
    ],
)
def test_unknown_scopes(scope: str) -> None:
    assert not is_known(scope)


USER = ["url:GET|/api/v1/users/:id"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/users/self", True),
        ("GET", "/api/v1/users/42", True),
        ("get", "/api/v1/users/42", True),
        ("HEAD", "/api/v1/users/42", True),  # HEAD counts as GET
        ("POST", "/api/v1/users/42", False),
        ("GET", "/api/v1/users/", False),  # a :param is at least one character
        ("GET", "/api/v1/users", False),
        ("GET", "/api/v1/users/42/profile", False),  # a :param is one segment
        ("GET", "/api/v1/users/42.json", True),  # optional .format
        ("GET", "/api/v1/users/self/../42", False),
        ("GET", "/api/v2/users/42", False),
        ("GET", "/xapi/v1/users/42", False),  # anchored
    ],
)
def test_param_segments(method: str, path: str, allowed: bool) -> None:
    assert allows(USER, method, path) is allowed


def test_glob_segments_match_across_slashes() -> None:
    scopes = ["url:GET|/api/v1/courses/:course_id/files/*path"]
    assert allows(scopes, "GET", "/api/v1/courses/1/files/a")
    assert allows(scopes, "GET", "/api/v1/courses/1/files/a/b/c.txt")
    assert not allows(scopes, "GET", "/api/v1/courses/1/files/")
    assert not allows(scopes, "GET", "/api/v1/courses/1/folders/a")


def test_optional_groups() -> None:
    scopes = ["url:GET|/api/v1/courses(/:id)"]
    assert allows(scopes, "GET", "/api/v1/courses")
    assert allows(scopes, "GET", "/api/v1/courses/7")
    assert not allows(scopes, "GET", "/api/v1/courses/7/users")
    nested = ["url:GET|/api/v1/a(/:b(/:c))"]
    assert allows(nested, "GET", "/api/v1/a")
    assert allows(nested, "GET", "/api/v1/a/1")
    assert allows(nested, "GET", "/api/v1/a/1/2")
    assert not allows(nested, "GET", "/api/v1/a/1/2/3")


def test_format_suffix() -> None:
    scopes = ["url:GET|/api/v1/courses"]
    assert allows(scopes, "GET", "/api/v1/courses")
    assert allows(scopes, "GET", "/api/v1/courses.json")
    assert allows(scopes, "GET", "/api/v1/courses.JSON")  # Canvas: ``(?:\.[^/]+|)``
    assert not allows(scopes, "GET", "/api/v1/courses.")
    assert not allows(scopes, "GET", "/api/v1/courses.json/x")
    assert not allows(scopes, "GET", "/api/v1/coursesX")


def test_literal_characters_are_not_patterns() -> None:
    assert not allows(["url:GET|/api/v1/a.b"], "GET", "/api/v1/aXb")


def test_verb_must_match() -> None:
    scopes = ["url:PUT|/api/v1/users/:id", "url:DELETE|/api/v1/users/:id"]
    assert allows(scopes, "PUT", "/api/v1/users/1")
    assert allows(scopes, "DELETE", "/api/v1/users/1")
    assert not allows(scopes, "GET", "/api/v1/users/1")
    assert not allows(scopes, "HEAD", "/api/v1/users/1")


def test_token_endpoint_is_always_allowed() -> None:
    assert allows([], "DELETE", "/login/oauth2/token")
    assert allows([], "POST", "/login/oauth2/token")


def test_non_url_scopes_grant_no_route() -> None:
    assert not allows([USERINFO, "cd2"], "GET", "/api/v1/users/self")
    assert not allows([], "GET", "/api/v1/users/self")
    assert not allows(["url:GET|/api/v1/users/:id extra"], "GET", "/api/v1/users/1")


def test_any_of_several_scopes() -> None:
    scopes = ["url:GET|/api/v1/courses", "url:GET|/api/v1/users/:id"]
    assert allows(scopes, "GET", "/api/v1/courses")
    assert allows(scopes, "GET", "/api/v1/users/1")
    assert not allows(scopes, "GET", "/api/v1/accounts")
