"""The data folder holds the SQLite file (password hashes) and the generated secret key:
lmsauth creates it for its user only, and says so when an existing one is open to others."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmsauth.settings import Settings


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """The umask of a shell that makes files others can read (022): modes must not rely on it."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("wide_umask")
def test_a_new_data_folder_and_its_secret_key_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "data"
    key = Settings(data_dir=folder).resolved_secret_key
    assert mode(folder) == 0o700
    assert mode(folder / "secret_key") == 0o600
    assert (folder / "secret_key").read_text() == key


@pytest.mark.usefixtures("wide_umask")
def test_the_data_folder_migrations_create_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    Settings(data_dir=folder).ensure_data_dir()
    assert mode(folder) == 0o700


def test_an_existing_wide_folder_is_kept_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="lmsauth.settings"):
        Settings(data_dir=folder).ensure_data_dir()
    assert mode(folder) == 0o755  # the operator's folder, the operator's choice
    assert [record.getMessage() for record in caplog.records] == [
        f"the data folder {folder} has mode 755: others on this machine may read its password "
        "hashes and secret key; chmod 700 it unless that is intended"
    ]


def test_an_existing_private_folder_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="lmsauth.settings"):
        Settings(data_dir=folder).ensure_data_dir()
    assert caplog.records == []
