"""LTI keys and deployments (issue 12 section 2): ``lmsauth lti-key create``, the seed file's
``lti_keys``, the Developer Keys API's ``is_lti_key`` and ``tool_configuration``, and the
console's page of an LTI key, each permission both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient

from lmsauth.canvas.keys import lti
from lmsauth.cli import main
from lmsauth.settings import Settings
from tests.canvas.lti.support import make_course
from tests.canvas.lti.tool import public_jwk, rsa_key_pair
from tests.canvas.support import issue_tokens
from tests.conftest import Directory, run
from tests.flows import log_in
from tests.production.support import environment

TOOL = "https://tool.example"
JWK = public_jwk(rsa_key_pair()[1])


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def lmsauth(settings: Settings, *args: str) -> Ran:
    """The ``lmsauth`` command in this process, with the test's settings in its environment
    (``tests/e2e/test_pylti1p3.py`` runs ``lti-key create`` as a subprocess)."""
    result = CliRunner().invoke(main, list(args), env=environment(settings))
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_lti_key_create_prints_the_platform_values(
    settings: Settings, directory: Directory, tmp_path: Path
) -> None:
    course_id = make_course(settings)
    jwk_file = tmp_path / "jwk.json"
    jwk_file.write_text(json.dumps({"keys": [JWK]}))  # a JWK set of one key is taken as that key
    common = ["--name", "Quizzer", "--initiation-url", f"{TOOL}/login", "--target-link-uri", f"{TOOL}/launch",
              "--redirect-uri", f"{TOOL}/launch", "--redirect-uri", f"{TOOL}/launch2"]  # fmt: skip
    done = lmsauth(settings, "lti-key", "create", *common, "--public-jwk", str(jwk_file),
                   "--scope", lti.NRPS_SCOPE, "--placement", "link_selection", "--course", str(course_id),
                   "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    base = settings.public_url
    assert data == {
        "client_id": data["client_id"],
        "deployment_id": data["deployment_id"],
        "issuer": base,
        "auth_login_url": f"{base}/api/lti/authorize_redirect",
        "auth_token_url": f"{base}/login/oauth2/token",
        "key_set_url": f"{base}/api/lti/security/jwks",
        "tool_id": data["tool_id"],
    }
    tool_id, context = data["deployment_id"].split(":")
    assert int(tool_id) == data["tool_id"] and len(context) == 40
    account_wide = lmsauth(
        settings, "lti-key", "create", *common, "--public-jwk-url", f"{TOOL}/jwks", "--json"
    )
    assert account_wide.returncode == 0, account_wide.stderr
    assert json.loads(account_wide.stdout)["deployment_id"].split(":")[1] != context

    by_url = [*common, "--public-jwk-url", f"{TOOL}/jwks"]
    no_alg = _file(tmp_path, {"kty": "RSA", "e": "AQAB", "n": "x"})
    private = _file(tmp_path, {**JWK, "d": "secret"})
    relative = ["--name", "X", "--initiation-url", "tool.example/login", "--target-link-uri", f"{TOOL}/l",
                "--redirect-uri", f"{TOOL}/l", "--public-jwk-url", f"{TOOL}/jwks"]  # fmt: skip
    refusals = {
        "give exactly one of --public-jwk FILE and --public-jwk-url URL": [*common],
        "the public JWK lacks alg, use": [*common, "--public-jwk", str(no_alg)],
        "the public JWK holds a private key": [*common, "--public-jwk", str(private)],
        "no course with id 999": [*by_url, "--course", "999"],
        "must be an absolute http(s) URL": relative,
        "tool_configuration.scopes may hold only": [*by_url, "--scope", "url:GET|/api/v1/users/:id"],
    }
    for message, args in refusals.items():
        refused = lmsauth(settings, "lti-key", "create", *args)
        assert refused.returncode != 0 and message in refused.stderr, (message, refused.stderr)


def _file(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"jwk-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_seed_file_makes_lti_keys_idempotently(settings: Settings, tmp_path: Path) -> None:
    course_id = make_course(settings)
    seed = tmp_path / "seed.toml"
    seed.write_text(
        f"""
[[lti_keys]]
name = "Seeded tool"
initiation_url = "{TOOL}/login"
target_link_uri = "{TOOL}/launch"
redirect_uris = ["{TOOL}/launch"]
public_jwk_url = "{TOOL}/jwks"
scopes = ["{lti.NRPS_SCOPE}"]
placements = ["course_navigation", "assignment_selection"]
courses = [{course_id}]
custom_fields = {{ user = "$Canvas.user.id" }}
"""
    )
    first = lmsauth(settings, "seed", str(seed), "--json")
    assert first.returncode == 0, first.stderr
    again = lmsauth(settings, "seed", str(seed), "--json")
    assert again.returncode == 0, again.stderr
    [key] = json.loads(first.stdout)["lti_keys"]
    assert json.loads(again.stdout)["lti_keys"] == [key]
    assert [entry["course_id"] for entry in key["deployments"]] == [None, course_id]
    assert key["key_set_url"] == f"{settings.public_url}/api/lti/security/jwks"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[lti_keys]]\nname = "x"\ninitiation_url = "x"\ntarget_link_uri = "y"\n')
    refused = lmsauth(settings, "seed", str(bad))
    assert refused.returncode != 0 and "oidc_initiation_url must be an absolute" in refused.stderr


def _token(client: TestClient, directory: Directory, *, admin: bool) -> str:
    """An access token of an admin, or of a person who is not one."""
    login = "admin@example.edu" if admin else "teacher@example.edu"
    person = directory.user(login, name="Ada Admin" if admin else "Tess Teacher", admin=admin)
    client.cookies.clear()
    token = str(issue_tokens(client, directory.key(name=f"Caller {login}"), person)["access_token"])
    client.cookies.clear()
    return token


def test_the_developer_keys_api_makes_and_shows_lti_keys(client: TestClient, directory: Directory) -> None:
    config = {
        "title": "API tool",
        "oidc_initiation_url": f"{TOOL}/login",
        "target_link_uri": f"{TOOL}/launch",
        "scopes": [lti.NRPS_SCOPE],
        "public_jwk": JWK,
        "extensions": [{"platform": "canvas.instructure.com", "privacy_level": "name_only",
                        "settings": {"placements": [{"placement": "course_navigation"}]}}],
    }  # fmt: skip
    form = {
        "developer_key[name]": "API tool",
        "developer_key[redirect_uris]": f"{TOOL}/launch",
        "developer_key[tool_configuration]": json.dumps(config),
    }
    teacher = _token(client, directory, admin=False)
    denied = client.post(
        "/api/v1/accounts/self/developer_keys", data=form, headers={"Authorization": f"Bearer {teacher}"}
    )
    assert denied.status_code == 401
    admin = {"Authorization": f"Bearer {_token(client, directory, admin=True)}"}
    made = client.post("/api/v1/accounts/self/developer_keys", data=form, headers=admin)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["is_lti_key"] is True and body["scopes"] == [lti.NRPS_SCOPE]
    assert body["tool_configuration"]["oidc_initiation_url"] == f"{TOOL}/login"
    assert body["public_jwk"] == JWK and body["public_jwk_url"] is None
    bad = {**form, "developer_key[tool_configuration]": json.dumps({**config, "public_jwk": None})}
    refused = client.post("/api/v1/accounts/self/developer_keys", data=bad, headers=admin)
    assert refused.status_code == 400
    assert refused.json()["errors"]["tool_configuration"][0]["message"] == (
        "a tool needs its public JWK or the URL of its JWK set"
    )
    by_url = {**config, "public_jwk": None, "public_jwk_url": f"{TOOL}/jwks"}
    changed = client.put(
        f"/api/v1/developer_keys/{body['id']}",
        data={"developer_key[tool_configuration]": json.dumps(by_url)},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["public_jwk_url"] == f"{TOOL}/jwks" and changed.json()["public_jwk"] is None


def test_the_console_shows_an_lti_key(client: TestClient, directory: Directory, settings: Settings) -> None:
    async def make() -> str:
        from lmsauth.core.db import Database

        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=True) as session:
                config = lti.build_tool_configuration(
                    title="Console tool", initiation_url=f"{TOOL}/login", target_link_uri=f"{TOOL}/launch",
                    public_jwk=JWK, public_jwk_url=None, scopes=[], placements=["course_navigation"],
                    custom_fields={}, privacy_level="anonymous",
                )  # fmt: skip
                key = await lti.save_lti_key(
                    session, name="Console tool", redirect_uris=[f"{TOOL}/launch"], tool_configuration=config,
                    secret_key=settings.resolved_secret_key,
                )  # fmt: skip
                tool = await lti.install(session, key, settings.resolved_secret_key)
                return f"{key.id}|{await lti.tool_deployment_id(session, tool)}"
        finally:
            await db.dispose()

    key_id, deployment = str(run(make())).split("|")
    page = f"/accounts/self/developer_keys/{key_id}"
    teacher = directory.user("teacher@example.edu", name="Tess Teacher")
    admin = directory.user("admin@example.edu", name="Ada Admin", admin=True)
    assert log_in(client, teacher.login, teacher.password).status_code == 302
    assert client.get(page).status_code == 401
    as_admin = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    assert log_in(as_admin, admin.login, admin.password).status_code == 302
    shown = as_admin.get(page)
    assert shown.status_code == 200
    assert (
        deployment in shown.text
        and "/api/lti/security/jwks" in shown.text
        and "oidc_initiation_url" in shown.text
    )
    assert "LTI 1.3" in as_admin.get("/accounts/self/developer_keys").text
