"""Off by default, and when on: loopback only, never with the strict profile, one process."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from lmsauth.cli import main
from lmsauth.settings import Settings
from tests.emulator.conftest import REMOTE, emulator_client

CONTROL_PATHS = [
    ("GET", "/_emulator/"),
    ("GET", "/_emulator/clock"),
    ("POST", "/_emulator/clock"),
    ("DELETE", "/_emulator/clock"),
    ("GET", "/_emulator/faults"),
    ("POST", "/_emulator/faults"),
    ("DELETE", "/_emulator/faults"),
    ("DELETE", "/_emulator/faults/1"),
    ("GET", "/_emulator/requests"),
    ("DELETE", "/_emulator/requests"),
    ("POST", "/_emulator/seed"),
    ("POST", "/_emulator/reset"),
    ("GET", "/_emulator/tokens"),
    ("POST", "/_emulator/flow"),
    ("GET", "/_emulator/static/emulator.css"),
    ("GET", "/_emulator/anything/else"),
]


def test_every_control_path_is_404_when_the_emulator_is_off(client) -> None:
    for method, path in CONTROL_PATHS:
        response = client.request(method, path, json={"advance": 10} if method == "POST" else None)
        assert response.status_code == 404, (method, path, response.status_code)
        assert "x-lmsauth-emulator" not in response.headers
    assert "/_emulator/" not in client.get("/login/canvas").text


@pytest.mark.parametrize(("method", "path"), CONTROL_PATHS)
def test_a_remote_caller_is_refused(emulator_settings, method, path) -> None:
    with emulator_client(emulator_settings, client=REMOTE) as remote:
        response = remote.request(method, path)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"
    assert "loopback" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/login/canvas", "/api/v1/users/self", "/ids/auth/login", "/commons/"])
def test_an_emulator_serves_no_remote_caller_at_all(emulator_settings, path) -> None:
    with emulator_client(emulator_settings, client=REMOTE) as remote:
        response = remote.get(path)
    assert response.status_code == 403
    assert "loopback" in response.json()["error"]["message"]


def test_forwarding_headers_do_not_make_a_caller_local(emulator) -> None:
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        for path in ("/_emulator/clock", "/login/canvas"):
            response = emulator.get(path, headers={header: "127.0.0.1"})
            assert response.status_code == 403, (header, path)


def test_a_remote_caller_claiming_loopback_is_refused(emulator_settings) -> None:
    with emulator_client(emulator_settings, client=REMOTE) as remote:
        response = remote.get("/_emulator/clock", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 403


def test_a_foreign_host_name_is_refused(emulator) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own host name."""
    assert emulator.get("/_emulator/clock", headers={"Host": "evil.example"}).status_code == 403
    assert emulator.get("/_emulator/clock", headers={"Host": "localhost:8000"}).status_code == 200
    assert emulator.get("/_emulator/clock", headers={"Host": "127.0.0.1:8000"}).status_code == 200


@pytest.mark.parametrize("path", ["/login/canvas", "/login/oauth2/jwks", "/commons/", "/static/lmsauth.css"])
def test_a_foreign_host_name_is_refused_on_every_path(emulator, path: str) -> None:
    """The emulator's Canvas (signed-in pages, tokens) is as open to a DNS-rebinding page as
    its control API: every path checks ``Host``."""
    refused = emulator.get(path, headers={"Host": "evil.example"})
    assert refused.status_code == 403
    assert "addressed to this machine" in refused.json()["error"]["message"]
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "testserver"):
        assert emulator.get(path, headers={"Host": host}).status_code != 403, host


def test_cross_site_browser_writes_are_refused(emulator) -> None:
    evil = emulator.post("/_emulator/reset", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    fetch = emulator.post("/_emulator/reset", headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    own = emulator.post("/_emulator/clock", json={"advance": 1}, headers={"Origin": "http://testserver"})
    assert own.status_code == 200


def test_remote_callers_may_be_allowed(emulator_settings) -> None:
    allowed = emulator_settings.model_copy(update={"emulator_allow_remote": True})
    with emulator_client(allowed, client=REMOTE) as remote:
        assert remote.get("/_emulator/clock").status_code == 200
        assert remote.get("/login/canvas").status_code == 200


@pytest.fixture
def serve_env(tmp_path, monkeypatch) -> None:
    """``serve`` writes its choices into the environment for uvicorn's factory: keep them in."""
    for name in ("LMSAUTH_EMULATOR", "LMSAUTH_EMULATOR_SEED", "LMSAUTH_SERVICES", "LMSAUTH_PUBLIC_URL"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(tmp_path))


def test_the_emulator_refuses_the_strict_profile(tmp_path, monkeypatch, serve_env) -> None:
    with pytest.raises(ValidationError, match="strict"):
        Settings(data_dir=tmp_path, emulator=True, profile="strict")
    monkeypatch.setenv("LMSAUTH_PROFILE", "strict")
    result = CliRunner().invoke(main, ["serve", "--emulator", "--port", "0"])
    assert result.exit_code == 1
    assert "strict" in result.output


def test_the_emulator_is_one_process(serve_env) -> None:
    result = CliRunner().invoke(main, ["serve", "--emulator", "--workers", "2"])
    assert result.exit_code == 2
    assert "one process" in result.output


def test_every_page_says_it_is_an_emulator(emulator) -> None:
    for path in ("/login/canvas", "/no/such/page", "/commons/", "/_emulator/"):
        page = emulator.get(path)
        assert page.headers["x-lmsauth-emulator"] == "1"
        assert 'class="lmsauth-emulator-banner"' in page.text, path
        assert "not a real Canvas" in page.text
        assert int(page.headers["content-length"]) == len(page.content)
    assert emulator.get("/_emulator/static/emulator.css").status_code == 200


def test_a_head_request_keeps_its_length(emulator) -> None:
    from lmsauth.emulator.middleware import BANNER, BANNER_CSS

    get, head = emulator.get("/login/canvas"), emulator.head("/login/canvas")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-lmsauth-emulator"] == "1"
    # HEAD tells the length of the page as the app wrote it: no body, so no banner in it.
    assert int(head.headers["content-length"]) == len(get.content) - len(BANNER) - len(BANNER_CSS)


@pytest.fixture
def served(monkeypatch) -> list[dict]:
    """``uvicorn.run`` recorded instead of run: what ``serve`` would start."""
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    return calls


def test_serve_emulator_runs_the_whole_app_in_one_process(serve_env, served, tmp_path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text('[[users]]\nlogin = "a@example.edu"\npassword = "a-password"\nname = "A"\n')
    result = CliRunner().invoke(main, ["serve", "--emulator", "--seed", str(seed), "--services", "commons"])
    assert result.exit_code == 0, result.output
    [call] = served
    assert call["app"] == "lmsauth.app:create_app" and call["workers"] == 1
    assert Settings().emulator is True
    assert Settings().emulator_seed == str(seed.resolve())  # the emulator loads it at start
    assert "/_emulator/" in result.output


def test_serve_seed_without_the_emulator_loads_it_once(serve_env, served, tmp_path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text('[[users]]\nlogin = "b@example.edu"\npassword = "b-password"\nname = "Bea"\n')
    result = CliRunner().invoke(main, ["serve", "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    assert Settings().emulator is False
    listed = CliRunner().invoke(main, ["seed", str(seed), "--json"])
    assert '"created": false' in listed.output  # already there: serve loaded it


def test_serve_emulator_takes_demo_or_seed_not_both(serve_env, served, tmp_path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text("")
    result = CliRunner().invoke(main, ["serve", "--emulator", "--demo", "--seed", str(seed)])
    assert result.exit_code == 2 and served == []
