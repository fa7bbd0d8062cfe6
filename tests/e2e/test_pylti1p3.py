"""pylti1p3, unmodified, against a live ``lmsauth serve``: the key made with ``lmsauth lti-key
create``, whose JSON is the tool's configuration; a resource link launch, deep linking, and the
launch of the link it made (spec lti13.md 9)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from lmsauth.settings import Settings
from tests.canvas.lti.support import NRPS, enroll, form, launch, make_course, signed_in_browser
from tests.canvas.lti.tool import Platform, Tool, public_jwk, rsa_key_pair, serve_tool
from tests.conftest import Directory, free_port
from tests.production.support import Serve, cli

P = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.mark.server
def test_pylti1p3_launches_and_deep_links_against_lmsauth_serve(
    settings: Settings, directory: Directory, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    course_id = make_course(settings, name="World History", code="HIST")
    teacher = directory.user("teacher@example.edu", name="Tess Teacher")
    enroll(settings, course_id, teacher, "TeacherEnrollment")
    with contextlib.contextmanager(serve_tool)(Tool(*rsa_key_pair())) as tool:
        jwk_file = tmp_path / "tool-jwk.json"
        jwk_file.write_text(json.dumps(public_jwk(tool.public_pem)))
        created = cli(
            settings,
            "lti-key", "create", "--name", "Reading list",
            "--initiation-url", tool.login_url, "--target-link-uri", tool.launch_url,
            "--redirect-uri", tool.launch_url, "--public-jwk", str(jwk_file), "--scope", NRPS,
            "--placement", "course_navigation", "--placement", "link_selection",
            "--custom", "canvas_course=$Canvas.course.id", "--course", str(course_id), "--json",
        )  # fmt: skip
        data: dict[str, Any] = json.loads(created.stdout)
        assert set(data) == {
            "client_id", "deployment_id", "issuer", "auth_login_url", "auth_token_url", "key_set_url",
            "tool_id",
        }  # fmt: skip
        platform = Platform.from_json(data)
        assert platform.key_set_url == f"{settings.public_url}/api/lti/security/jwks"
        tool.configure([platform])
        server = Serve(settings, port)
        try:
            server.wait_until_up()
            browser = signed_in_browser(server.url, teacher)
            path = f"/courses/{course_id}/external_tools/{platform.tool_id}"
            steps = launch(browser, path)
            assert steps.tool is not None and steps.tool.status_code == 200, (tool.errors, server.output)
            assert "Tess Teacher launched the tool in World History" in steps.tool.text
            assert tool.launches[-1][P + "custom"] == {"canvas_course": str(course_id)}

            tool.deep_link_items = [
                DeepLinkResource().set_url(tool.launch_url + "?page=7").set_title("Page 7")
                .set_lineitem(LineItem().set_score_maximum(5).set_label("Page 7 quiz")),
            ]  # fmt: skip
            steps = launch(browser, path + "?launch_type=link_selection")
            assert steps.tool is not None and steps.tool.status_code == 200, tool.errors
            answer = form(steps.tool.text, "lti13_deep_link_auto_submit")
            assert browser.post(answer.action, data=answer.data).status_code == 200

            listing = browser.get(f"/courses/{course_id}/external_tools")
            link = next(each for each in listing.text.split('"') if "resource_link_id=" in each)
            steps = launch(browser, link.replace("&amp;", "&"))
            assert steps.tool is not None and steps.tool.status_code == 200, tool.errors
            assert tool.launches[-1][P + "resource_link"]["title"] == "Page 7"
            assert tool.launches[-1][P + "target_link_uri"] == tool.launch_url + "?page=7"
        finally:
            server.stop()
