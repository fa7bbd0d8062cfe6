"""Canvas's pagination rules (``Api.per_page_for``, ``build_links_hash``), on their own."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from lmsauth.canvas.pagination import PageRequest, link_header, page_request
from lmsauth.core.errors import WireError
from lmsauth.core.web import Params


def params(**values: str) -> Params:
    return Params([(name, value) for name, value in values.items()])


def request(query: str, path: str = "/api/v1/accounts/self/users") -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []}
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 10),
        ("25", 25),
        ("100", 100),
        ("101", 100),
        ("5000", 100),
        ("0", 1),
        ("-3", 1),
        ("abc", 1),
        ("7x", 7),
    ],
)
def test_per_page_is_clamped_as_canvas_does(raw: str | None, expected: int) -> None:
    given = params(per_page=raw) if raw is not None else params()
    assert page_request(given).per_page == expected


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5"])
def test_a_page_that_is_not_a_positive_integer_is_not_found(raw: str) -> None:
    with pytest.raises(WireError) as raised:
        page_request(params(page=raw))
    assert raised.value.status == 404
    assert raised.value.body == {"errors": [{"message": "The specified resource does not exist."}]}


def test_page_and_offset() -> None:
    asked = page_request(params(page="3", per_page="20"))
    assert asked == PageRequest(3, 20)
    assert asked.offset == 40


def test_links_of_a_middle_page_keep_other_parameters_in_canvas_order() -> None:
    header = link_header(
        request("search_term=sam&page=2&per_page=5&access_token=secret"),
        "https://lms.example",
        PageRequest(2, 5),
        12,
    )
    base = "https://lms.example/api/v1/accounts/self/users?search_term=sam&"
    assert header == ",".join(
        [
            f'<{base}page=2&per_page=5>; rel="current"',
            f'<{base}page=3&per_page=5>; rel="next"',
            f'<{base}page=1&per_page=5>; rel="prev"',
            f'<{base}page=1&per_page=5>; rel="first"',
            f'<{base}page=3&per_page=5>; rel="last"',
        ]
    )
    assert "secret" not in header


def test_links_of_the_only_page_and_of_an_empty_list() -> None:
    one = link_header(request(""), "http://h", PageRequest(1, 10), 3)
    assert one == (
        '<http://h/api/v1/accounts/self/users?page=1&per_page=10>; rel="current",'
        '<http://h/api/v1/accounts/self/users?page=1&per_page=10>; rel="first",'
        '<http://h/api/v1/accounts/self/users?page=1&per_page=10>; rel="last"'
    )
    assert 'rel="next"' not in link_header(request(""), "http://h", PageRequest(1, 10), 0)


def test_a_page_past_the_end_points_back_without_next() -> None:
    header = link_header(request(""), "http://h", PageRequest(9, 10), 15)
    assert 'rel="next"' not in header
    assert '<http://h/api/v1/accounts/self/users?page=2&per_page=10>; rel="prev"' in header
