"""The operator's commands (``lmsauth commons consumer``, ``lmsauth external-tool``) and the
demo seed that makes ``lmsauth serve --demo`` ready for the Commons chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from lmsauth import seed
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.cli import main
from lmsauth.commons.models import CommonsAccount, LtiConsumer
from lmsauth.core.db import Database
from lmsauth.settings import Settings
from tests.conftest import TEST_SECRET_KEY, Directory, run


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LMSAUTH_SECRET_KEY", TEST_SECRET_KEY)
    return settings


def test_consumer_create_prints_key_and_secret_once(cli_env: Settings, directory: Directory) -> None:
    result = CliRunner().invoke(main, ["commons", "consumer", "create", "--name", "North College", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"consumer_key", "shared_secret"}
    assert len(data["shared_secret"]) >= 32
    (row,) = directory.query(select(LtiConsumer.consumer_key, LtiConsumer.shared_secret_sealed))
    assert row.consumer_key == data["consumer_key"]
    assert data["shared_secret"] not in row.shared_secret_sealed  # sealed at rest
    listed = CliRunner().invoke(main, ["commons", "consumer", "list", "--json"])
    assert listed.exit_code == 0, (listed.output, listed.exception)
    assert json.loads(listed.output)[0]["consumer_key"] == data["consumer_key"]
    assert "shared_secret" not in listed.output
    again = CliRunner().invoke(
        main, ["commons", "consumer", "create", "--name", "X", "--consumer-key", data["consumer_key"]]
    )
    assert again.exit_code == 1 and "already exists" in again.output


def test_external_tool_create_with_the_issued_credentials(cli_env: Settings) -> None:
    issued = json.loads(
        CliRunner().invoke(main, ["commons", "consumer", "create", "--name", "N", "--json"]).output
    )
    args = ["external-tool", "create", "--name", "Commons", "--privacy", "public", "--json"]
    args += ["--url", "http://127.0.0.1:8000/commons/api/lti", "--consumer-key", issued["consumer_key"]]
    args += ["--shared-secret", issued["shared_secret"]]
    args += ["--custom", "prefers_high_contrast=$Canvas.user.prefersHighContrast"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    tool = json.loads(result.output)
    assert tool["privacy_level"] == "public" and tool["consumer_key"] == issued["consumer_key"]
    assert tool["custom_fields"] == {"prefers_high_contrast": "$Canvas.user.prefersHighContrast"}
    assert "shared_secret" not in result.output
    bad = CliRunner().invoke(
        main,
        [
            "external-tool",
            "create",
            "--name",
            "x",
            "--url",
            "not a url",
            "--consumer-key",
            "k",
            "--shared-secret",
            "s",
        ],
    )
    assert bad.exit_code == 1 and "absolute http(s) URL" in bad.output
    listed = CliRunner().invoke(main, ["external-tool", "list", "--json"])
    assert [row["name"] for row in json.loads(listed.output)] == ["Commons"]


def _counts(settings: Settings) -> tuple[int, int, int]:
    async def work() -> tuple[int, int, int]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return (
                    await session.scalar(select(func.count()).select_from(LtiConsumer)) or 0,
                    await session.scalar(select(func.count()).select_from(CommonsAccount)) or 0,
                    await session.scalar(select(func.count()).select_from(ExternalTool)) or 0,
                )
        finally:
            await db.dispose()

    result: tuple[int, int, int] = run(work())
    return result


def test_demo_seed_installs_commons_idempotently(settings: Settings) -> None:
    live = settings.model_copy(update={"public_url": "http://127.0.0.1:8000"})

    async def load() -> seed.SeedResult:
        db = Database(settings.resolved_database_url)
        try:
            return await seed.load(db, seed.demo_seed_text(), live)
        finally:
            await db.dispose()

    first: seed.SeedResult = run(load())
    second: seed.SeedResult = run(load())
    assert _counts(settings) == (1, 1, 1)
    (tool,) = second.external_tools
    assert tool["url"] == "http://127.0.0.1:8000/commons/api/lti"
    assert tool["privacy_level"] == "public"
    assert first.commons_consumers[0]["consumer_key"] == tool["consumer_key"]
    assert first.external_tools[0]["id"] == tool["id"]


def test_seed_with_a_bad_consumer_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    text = (
        seed.demo_seed_text()
        + '\n[[commons_consumers]]\nname = "Bad"\nconsumer_key = "k2"\nshared_secret = "short"\n'
    )

    async def load() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await seed.load(db, text, settings)
        finally:
            await db.dispose()

    with pytest.raises(seed.SeedError, match="at least 16"):
        run(load())
    assert _counts(settings) == (0, 0, 0)
