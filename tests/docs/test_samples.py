"""Every code block in ``docs/*.md`` and ``README.md`` is run here, or says why not.

The line before a block's fence is an HTML comment (the site does not show it):
``<!-- run: NAME -->`` runs the block and checks what it printed and wrote with ``CHECKS[NAME]``;
``<!-- not run: REASON -->`` says why it cannot run (a synopsis, an output sample, a command
that serves forever or takes 25 minutes) and what tests it instead. A block with neither, or a
NAME without a check, fails ``test_every_block_is_run_or_says_why_not``: a new sample cannot
escape.

Shell blocks run with ``bash -e`` as a reader runs them after ``./scripts/serve``: in an empty
folder whose ``.venv`` is this one, with ``B=http://127.0.0.1:8000`` pointed at a
``lmsauth serve --demo`` of the test's own (its own data folder, and the test's PostgreSQL and
Redis when the suite runs over them), the CLI sharing its database, and the virtualenv's
``bin`` left off ``PATH`` so that a sample saying ``dap`` where a reader needs ``.venv/bin/dap``
fails. Python blocks run the same way (``B = "http://127.0.0.1:8000"``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from lmsauth.settings import Settings
from tests.conftest import free_port
from tests.production.support import Serve, environment

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
DOCUMENTED_URL = "http://127.0.0.1:8000"
MARK = re.compile(r"<!-- (?:run: (?P<name>[a-z0-9-]+)|not run: (?P<reason>\S.*?)) -->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>.*)$")
B_LINE = re.compile(r'^(B=|B = ")http://127\.0\.0\.1:8000(?=[;"]|$)', re.M)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    info: str
    code: str
    run: str | None
    reason: str | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.info or 'no language'})"


def blocks() -> list[Block]:
    found: list[Block] = []
    for path in PAGES:
        lines = path.read_text().splitlines()
        number = 0
        while number < len(lines):
            opening = FENCE.match(lines[number])
            if opening is None:
                number += 1
                continue
            end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
            indent = len(opening["indent"])
            code = "".join(line[indent:] + "\n" for line in lines[number + 1 : end])
            mark = MARK.fullmatch(lines[number - 1].strip()) if number else None
            found.append(
                Block(
                    page=str(path.relative_to(ROOT)),
                    line=number + 1,
                    info=opening["info"].strip(),
                    code=code,
                    run=mark["name"] if mark else None,
                    reason=mark["reason"] if mark else None,
                )
            )
            number = end + 1
    return found


def sample(name: str) -> Block:
    (found,) = [block for block in blocks() if block.run == name]
    return found


# ------------------------------------------------------------------ running a sample


@dataclass
class Reader:
    """A person with a checkout and ``./scripts/serve`` running: a folder of their own, the
    server's URL, and the environment that the CLI shares the server's database through."""

    folder: Path
    url: str
    env: dict[str, str]

    def run(self, block: Block, prelude: Block | None = None) -> subprocess.CompletedProcess[str]:
        code = self.pointed_at_server(block)
        if block.info in ("sh", "bash"):
            if prelude is not None:  # its output is not the block's
                code = "{\n" + self.pointed_at_server(prelude) + "\n} > prelude.out\n" + code
            command = ["bash", "-e", "-c", code]
        elif block.info == "python":
            script = self.folder / f"{block.run}.py"
            script.write_text(code)
            command = [sys.executable, script.name]
        else:
            raise AssertionError(f"{block}: no way to run a {block.info!r} block")
        return subprocess.run(
            command, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120
        )

    def pointed_at_server(self, block: Block) -> str:
        code = B_LINE.sub(lambda m: m[1] + self.url, block.code)
        assert DOCUMENTED_URL not in code, f"{block}: name the server as $B, not {DOCUMENTED_URL}"
        return code

    def json(self, name: str) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.folder / name).read_text())
        return data


def ran(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def until_step_7(flow: Block) -> Block:
    """The curl flow's steps 1 to 6, which leave a live access token in ``$TOKEN``."""
    return replace(flow, code=flow.code.split("# 7.", 1)[0])


# ------------------------------------------------------------------ the checks, by name


def check_curl_code_flow(reader: Reader) -> None:
    output = ran(reader.run(sample("curl-code-flow")))
    assert output.startswith(f"{reader.url}/login/canvas\n{reader.url}/login/oauth2/confirm\n"), output
    tokens = reader.json("tokens.json")
    assert set(tokens) >= {"access_token", "refresh_token", "token_type", "user", "expires_in"}
    assert tokens["expires_in"] == 3600
    assert tokens["user"] == {  # as step 4 says
        "id": 1,
        "name": "Sam Student",
        "global_id": "10000000000001",
        "effective_locale": "en",
        "fake_student": False,
    }
    assert '"name":"Sam Student"' in output.split('"expires_in":3600}', 1)[1]  # step 5
    # Step 6's refresh ended the first access token ("the old one stops working").
    old = httpx.get(
        f"{reader.url}/api/v1/users/self", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert old.status_code == 401, old.text


def check_commons_python_chain(reader: Reader) -> None:
    lines = ran(reader.run(sample("commons-python-chain"))).splitlines()
    assert lines[-2:] == ["Sam Student", "204"]
    session = json.loads("\n".join(lines[:-2]))
    assert len(session) == 21 and session["sessionId"] == session["sid"]  # the 20 members and sessionId


def check_commons_session_curl(reader: Reader) -> None:
    # The person launched Commons and accepted its terms in the Python chain, run before.
    lines = ran(
        reader.run(sample("commons-session-curl"), until_step_7(sample("curl-code-flow")))
    ).splitlines()
    first, second, logged_out = lines
    assert len(json.loads(first)) == 20 and json.loads(second) == json.loads(first)  # spec C4
    assert logged_out == "204"


def check_identity_dap_flow(reader: Reader) -> None:
    output = ran(reader.run(sample("identity-dap-flow")))
    login = reader.json("ids.json")
    assert set(login) == {"access_token", "expires_in", "scope", "token_type"}
    assert login["expires_in"] == 3599 and login["token_type"] == "bearer"
    assert login["scope"] == "dap principal:inst-1 partner: region:us-east-1"
    tables = '["access_tokens","accounts","courses","developer_keys","enrollments","pseudonyms","users"]'
    assert '{"tables":' + tables + "}" in output
    assert '"version":1}' in output  # the users schema
    assert "Found 7 tables in canvas namespace" in output  # the dap client's list
    written = json.loads((reader.folder / "downloads/users_schema_version_1.json").read_text())
    assert written["version"] == 1 and written["schema"]["title"] == "canvas.users", written


def check_dap_jobs_flow(reader: Reader) -> None:
    output = ran(reader.run(sample("dap-jobs-flow")))
    waiting = json.loads(output.splitlines()[0])
    assert set(waiting) == {"id", "status", "expires_at"} and waiting["status"] in ("waiting", "running")
    job = reader.json("job.json")
    assert job["status"] == "complete" and set(job) == {
        "id",
        "status",
        "expires_at",
        "objects",
        "schema_version",
        "at",
    }
    first = json.loads(next(line for line in output.splitlines() if line.startswith('{"meta"')))
    assert set(first) == {"meta", "key", "value"} and first["meta"] == {"ts": job["at"]}
    snapshots = list((reader.folder / "snap").glob("job_*/*.csv.gz"))
    assert len(snapshots) == 1
    assert reader.json("key.json")["name"] == "Late Comer"
    changed = [line.split("\t") for line in output.splitlines() if line.startswith("U\t")]
    assert [row[2] for row in changed] == ["Late Comer"], output


def check_people_cli(reader: Reader) -> None:
    result = reader.run(sample("people-cli"))
    output = ran(result)
    assert json_lines(output)[0] == {"id": 5, "login": "pat@example.edu", "name": "Pat Teacher"}
    key = reader.json("key.json")
    assert set(key) >= {"client_id", "client_secret"}
    listed = [line.split("\t") for line in output.splitlines() if "\t" in line]
    assert [key["client_id"], "active", "Gradebook Sync", "https://gradebook.example/callback"] in listed
    assert f"developer key {key['client_id']} is inactive" in result.stderr
    assert f"developer key {key['client_id']} is active" in result.stderr


def check_tokens_cli_and_api(reader: Reader) -> None:
    output = ran(reader.run(sample("tokens-cli-and-api")))
    made = reader.json("token.json")
    assert set(made) == {"id", "token", "token_hint", "user_id", "purpose", "expires_at"}
    assert made["purpose"] == "Grading script" and made["expires_at"] is None
    created = json_lines(output)[0]
    assert len(created["visible_token"]) == 64 and created["expires_at"] == "2099-01-31T00:00:00Z"
    listed = json.loads(next(line for line in output.splitlines() if line.startswith("[")))
    assert [row["visible_token"] for row in listed] == [made["token_hint"] + "..."]
    rows = [line.split("\t") for line in output.splitlines() if "\t" in line]
    # Earlier samples signed the same student in through OAuth: their tokens are listed too.
    assert [row[3] for row in rows if row[2] == "User-Generated"] == ["Grading script", "Nightly sync"]
    assert made["token"] not in output


def check_courses_cli_and_api(reader: Reader) -> None:
    output = ran(reader.run(sample("courses-cli-and-api")))
    course = reader.json("course.json")
    assert (course["name"], course["course_code"], course["workflow_state"]) == (
        "Biology 101 Fall",
        "Biology 101",
        "available",
    )
    teacher = json_lines(output)[0]
    assert (teacher["course_id"], teacher["role"], teacher["enrollment_state"]) == (
        course["id"],
        "teacher",
        "active",
    )
    assert f"enrolled student@example.edu in course {course['id']} as student" in output
    listed = [line.split("\t")[1:] for line in output.splitlines() if "\t" in line]
    assert listed == [
        ["student", "active", "student@example.edu"],
        ["teacher", "active", "teacher@example.edu"],
    ]
    arrays = [json.loads(line) for line in output.splitlines() if line.startswith("[")]
    # The teacher's courses: this one and the demo seed's, by name.
    assert [(c["name"], c["enrollments"][0]["type"]) for c in arrays[0]] == [
        ("Biology 101 Fall", "teacher"),
        ("Demo Course", "teacher"),
    ]
    assert [row["user"]["login_id"] for row in arrays[1]] == ["student@example.edu"]


def check_lti_key_cli(reader: Reader) -> None:
    ran(reader.run(sample("lti-key-cli")))
    platform = reader.json("platform.json")
    assert set(platform) == {
        "client_id", "deployment_id", "issuer", "auth_login_url", "auth_token_url", "key_set_url", "tool_id"
    }  # fmt: skip
    tool_id, context = platform["deployment_id"].split(":")
    assert int(tool_id) == platform["tool_id"] and len(context) == 40
    assert platform["key_set_url"] == platform["issuer"] + "/api/lti/security/jwks"
    keys = reader.json("lti-jwks.json")["keys"]
    assert len(keys) >= 2 and all(key["alg"] == "RS256" and key["use"] == "sig" for key in keys)


def check_commons_setup_by_hand(reader: Reader) -> None:
    output = ran(reader.run(sample("commons-setup-by-hand")))
    consumer = reader.json("consumer.json")
    assert set(consumer) >= {"consumer_key", "shared_secret"}
    (tool,) = json_lines(output)
    assert tool["name"] == "Canvas Commons" and tool["url"] == f"{reader.url}/commons/api/lti", tool


def check_pytest_plugin_example(reader: Reader | None = None) -> None:
    # Run by the suite as that file, and in a user's own project by test_user_project.py.
    example = (ROOT / "tests/emulator/test_readme_example.py").read_text()
    assert sample("pytest-plugin-example").code == example


# In this order against one server: the chain accepts the Commons terms the curl session needs,
# and the by-hand set-up, which adds a second Commons tool, comes last.
LIVE: dict[str, Callable[[Reader], None]] = {
    "curl-code-flow": check_curl_code_flow,
    "commons-python-chain": check_commons_python_chain,
    "commons-session-curl": check_commons_session_curl,
    "identity-dap-flow": check_identity_dap_flow,
    "dap-jobs-flow": check_dap_jobs_flow,
    "people-cli": check_people_cli,
    "tokens-cli-and-api": check_tokens_cli_and_api,
    "courses-cli-and-api": check_courses_cli_and_api,
    "commons-setup-by-hand": check_commons_setup_by_hand,
    "lti-key-cli": check_lti_key_cli,
}
OFFLINE: dict[str, Callable[[], None]] = {"pytest-plugin-example": check_pytest_plugin_example}


# ------------------------------------------------------------------ the tests


def test_every_block_is_run_or_says_why_not() -> None:
    found = blocks()
    assert len(found) > 10, "the extractor found too few blocks"
    unmarked = [str(block) for block in found if block.run is None and block.reason is None]
    assert not unmarked, f"mark each with <!-- run: NAME --> or <!-- not run: REASON -->: {unmarked}"
    names = [block.run for block in found if block.run]
    assert len(names) == len(set(names)), f"a run NAME is used twice: {names}"
    assert sorted(names) == sorted([*LIVE, *OFFLINE]), "every run NAME needs a check, every check a block"


def test_the_readme_shows_the_demo_credentials_of_getting_started() -> None:
    def table(text: str) -> str:
        start = text.index("| what | value |")
        return text[start : text.index("\n\n", start)]

    readme = (ROOT / "README.md").read_text()
    assert table(readme) == table((ROOT / "docs/getting-started.md").read_text())
    assert "./scripts/serve" in readme and "./scripts/test" in readme  # CI runs ./scripts/test


def test_the_pytest_plugin_example_is_the_test_the_suite_runs() -> None:
    for check in OFFLINE.values():
        check()


@pytest.mark.server
def test_the_samples_run_as_written_against_a_live_server(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = settings.model_copy(update={"public_url": url})
    server = Serve(served, port=port, args=("--demo",))
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / ".venv").symlink_to(sys.prefix)
    env = {name: value for name, value in environment(served).items() if not name.startswith("DAP_")}
    venv_bin = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if entry and Path(entry) != venv_bin
    )
    env.pop("VIRTUAL_ENV", None)
    reader = Reader(folder, url, env)
    failures: list[str] = []
    try:
        server.wait_until_up()
        for name, check in LIVE.items():
            started = time.monotonic()
            try:
                check(reader)
            except Exception as exc:  # every sample is tried; each failure is reported
                failures.append(f"{sample(name)} [{name}]: {exc!r}")
            print(f"{name}: {time.monotonic() - started:.1f} s")
    finally:
        server.stop()
    assert not failures, "\n\n".join(failures)
